//! ADWIN (adaptive windowing, Bifet & Gavaldà 2007) as River implements it: an exponential
//! histogram of buckets (rows of up to 5 buckets of 1, 2, 4, … values, each with its total and
//! variance); every 32 values, once the window holds more than 10, each cut between older and
//! newer buckets is tested, and while one shows a mean difference above the Hoeffding-style
//! bound the oldest bucket is dropped. Every bucket, the newest of each row included, ends a
//! candidate cut (as River 0.26's ADWIN checks them). The feature operator restarts a detector
//! after it fires, as River does.
const MAX_BUCKETS: usize = 5;
const CLOCK: u64 = 32;
const GRACE: f64 = 10.0;
const MIN_LEN: f64 = 5.0;

/// Buckets of one size, oldest first.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Row {
    totals: Vec<f64>,
    variances: Vec<f64>,
}

/// One ADWIN detector.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Adwin {
    delta: f64,
    rows: Vec<Row>,
    total: f64,
    variance: f64,
    width: f64,
    tick: u64,
}

fn size(row: usize) -> f64 {
    (1u64 << row) as f64
}

impl Adwin {
    pub fn new(delta: f64) -> Self {
        Adwin {
            delta,
            rows: vec![Row::default()],
            total: 0.0,
            variance: 0.0,
            width: 0.0,
            tick: 0,
        }
    }

    /// Values in the window.
    pub fn width(&self) -> f64 {
        self.width
    }

    /// Adds a value; true when a change was detected (the window then dropped its old part).
    pub fn update(&mut self, x: f64) -> bool {
        self.insert(x);
        self.detect()
    }

    fn insert(&mut self, x: f64) {
        self.rows[0].totals.push(x);
        self.rows[0].variances.push(0.0);
        self.width += 1.0;
        if self.width > 1.0 {
            let prev = self.total / (self.width - 1.0);
            self.variance += (self.width - 1.0) * (x - prev) * (x - prev) / self.width;
        }
        self.total += x;
        // Merge the two oldest buckets of a full row into the next row, upwards.
        let mut r = 0;
        while r < self.rows.len() && self.rows[r].totals.len() == MAX_BUCKETS + 1 {
            if r + 1 == self.rows.len() {
                self.rows.push(Row::default());
            }
            let n = size(r);
            let (t1, t2) = (self.rows[r].totals[0], self.rows[r].totals[1]);
            let (m1, m2) = (t1 / n, t2 / n);
            let v = self.rows[r].variances[0]
                + self.rows[r].variances[1]
                + n * n * (m1 - m2) * (m1 - m2) / (2.0 * n);
            self.rows[r].totals.drain(..2);
            self.rows[r].variances.drain(..2);
            self.rows[r + 1].totals.push(t1 + t2);
            self.rows[r + 1].variances.push(v);
            r += 1;
        }
    }

    /// Drops the oldest bucket; returns its size.
    fn delete_oldest(&mut self) -> f64 {
        let last = self.rows.len() - 1;
        let n = size(last);
        let u = self.rows[last].totals[0];
        let v = self.rows[last].variances[0];
        self.width -= n;
        self.total -= u;
        let (mu, mu_w) = (u / n, self.total / self.width);
        self.variance -= v + n * self.width * (mu - mu_w) * (mu - mu_w) / (n + self.width);
        self.rows[last].totals.remove(0);
        self.rows[last].variances.remove(0);
        if self.rows[last].totals.is_empty() && last > 0 {
            self.rows.pop();
        }
        n
    }

    fn cut(&self, n0: f64, n1: f64, diff: f64) -> bool {
        let dd = (2.0 * self.width.ln() / self.delta).ln();
        let m = 1.0 / (n0 - MIN_LEN + 1.0) + 1.0 / (n1 - MIN_LEN + 1.0);
        let eps = (2.0 * m * (self.variance / self.width) * dd).sqrt() + 2.0 / 3.0 * dd * m;
        diff.abs() > eps
    }

    fn detect(&mut self) -> bool {
        self.tick += 1;
        let mut detected = false;
        if !self.tick.is_multiple_of(CLOCK) || self.width <= GRACE {
            return false;
        }
        let mut again = true;
        while again {
            again = false;
            let (mut n0, mut n1, mut u0, mut u1) = (0.0, self.width, 0.0, self.total);
            'rows: for r in (0..self.rows.len()).rev() {
                let len = self.rows[r].totals.len();
                for k in 0..len {
                    let n2 = size(r);
                    let u2 = self.rows[r].totals[k];
                    n0 += n2;
                    n1 -= n2;
                    u0 += u2;
                    u1 -= u2;
                    if r == 0 && k + 1 == len {
                        break 'rows;
                    }
                    let diff = u0 / n0 - u1 / n1;
                    if n1 >= MIN_LEN && n0 >= MIN_LEN && self.cut(n0, n1, diff) {
                        again = true;
                        detected = true;
                        if self.width > 0.0 {
                            self.delete_oldest();
                            break 'rows;
                        }
                    }
                }
            }
        }
        detected
    }
}
