//! Topic filters and topic columns: `plant/+/+/telemetry` with `topic_columns = 'site,machine_id'`
//! turns the two `+` levels of each message's topic into the `site` and `machine_id` columns.
use crate::{Error, Result};

/// Maps `+` levels of a filter to column names.
#[derive(Debug, Clone)]
pub struct TopicColumns {
    /// (level index, column name)
    levels: Vec<(usize, String)>,
}

impl TopicColumns {
    /// Pairs the `+` levels of `filter` with `names` (comma-separated), left to right.
    pub fn new(filter: &str, names: Option<&str>) -> Result<Self> {
        let names: Vec<String> = names
            .map(|n| {
                n.split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let plus: Vec<usize> = filter
            .split('/')
            .enumerate()
            .filter(|(_, l)| *l == "+")
            .map(|(i, _)| i)
            .collect();
        if names.len() > plus.len() {
            return Err(Error::Option {
                option: "topic_columns".into(),
                message: format!(
                    "{} names but the filter '{filter}' has {} '+' levels",
                    names.len(),
                    plus.len()
                ),
            });
        }
        Ok(TopicColumns {
            levels: plus.into_iter().zip(names).collect(),
        })
    }

    /// The column names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.levels.iter().map(|(_, n)| n.as_str())
    }

    /// Whether `name` is a topic column.
    pub fn contains(&self, name: &str) -> bool {
        self.levels.iter().any(|(_, n)| n == name)
    }

    /// The value of column `name` in `topic`.
    pub fn value<'t>(&self, name: &str, topic: &'t str) -> Option<&'t str> {
        let (level, _) = self.levels.iter().find(|(_, n)| n == name)?;
        topic.split('/').nth(*level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_become_columns() {
        let t = TopicColumns::new("plant/+/+/telemetry", Some("site, machine_id")).unwrap();
        assert_eq!(t.value("site", "plant/north/m7/telemetry"), Some("north"));
        assert_eq!(
            t.value("machine_id", "plant/north/m7/telemetry"),
            Some("m7")
        );
        assert!(TopicColumns::new("plant/+/x", Some("a,b")).is_err());
    }
}
