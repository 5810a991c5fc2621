//! Credentials inside URLs (`mqtt://user:password@host:1883`): split off for connecting, and
//! hidden (`user:****@`) wherever a URL is shown — plans, lineage, errors, logs.

/// What a hidden password is shown as.
pub const HIDDEN: &str = "****";

/// `url` without its `user:password@` part, and the user and password it named.
pub fn split_userinfo(url: &str) -> (String, Option<(String, String)>) {
    let Some((start, _, at)) = userinfo_span(url, 0) else {
        return (url.to_string(), None);
    };
    let info = &url[start..at];
    let (user, pass) = info.split_once(':').unwrap_or((info, ""));
    let bare = format!("{}{}", &url[..start], &url[at + 1..]);
    (bare, Some((user.to_string(), pass.to_string())))
}

/// `text` with the password of every URL in it hidden: `scheme://user:****@host`.
pub fn hide_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    while let Some((start, _, at)) = userinfo_span(text, from) {
        let info = &text[start..at];
        out.push_str(&text[from..start]);
        match info.split_once(':') {
            Some((user, _)) => out.push_str(&format!("{user}:{HIDDEN}")),
            None => out.push_str(info),
        }
        out.push('@');
        from = at + 1;
    }
    out.push_str(&text[from..]);
    out
}

/// The next URL authority at or after `from` that holds a `@`: (start of the user info, end of
/// the authority, index of the `@`).
fn userinfo_span(text: &str, from: usize) -> Option<(usize, usize, usize)> {
    let mut search = from;
    while let Some(i) = text.get(search..)?.find("://") {
        let start = search + i + 3;
        let rest = &text[start..];
        let end = start
            + rest
                .find(|c: char| {
                    c == '/' || c == '?' || c == '#' || c == '\'' || c == '"' || c.is_whitespace()
                })
                .unwrap_or(rest.len());
        if let Some(at) = text[start..end].rfind('@') {
            return Some((start, end, start + at));
        }
        search = start;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_split_and_hidden() {
        let (bare, who) = split_userinfo("mqtt://weir:p@ss:w0rd@10.0.0.5:1883");
        assert_eq!(bare, "mqtt://10.0.0.5:1883");
        assert_eq!(who, Some(("weir".into(), "p@ss:w0rd".into())));
        assert_eq!(split_userinfo("mqtt://h:1883").1, None);
        assert_eq!(
            hide_userinfo("to http://u:secret@h/x and mqtt://v:other@k:1 done"),
            "to http://u:****@h/x and mqtt://v:****@k:1 done"
        );
        assert_eq!(
            hide_userinfo("url = 'mqtt://a:b@h'"),
            "url = 'mqtt://a:****@h'"
        );
        assert_eq!(hide_userinfo("no urls: a@b"), "no urls: a@b");
    }
}
