//! Progress of long work (a whole index built, a replica's first copy, a
//! verify of every pool file), reported at most once per period so that
//! short runs stay quiet and long ones are never silent. The command-line
//! tool prints it on standard error; the function logs it.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where progress lines go, and how often.
pub struct Progress {
    every: Duration,
    last: Mutex<Instant>,
    sink: Box<dyn Fn(&str) + Send + Sync>,
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress")
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl Progress {
    /// Reports through `sink` at most once every `every`, the first time
    /// `every` after it is made.
    pub fn new(every: Duration, sink: impl Fn(&str) + Send + Sync + 'static) -> Progress {
        Progress {
            every,
            last: Mutex::new(Instant::now()),
            sink: Box::new(sink),
        }
    }

    /// Reports `what()` if the period has passed since the last report;
    /// `what` is not called otherwise.
    pub fn tick(&self, what: impl FnOnce() -> String) {
        let now = Instant::now();
        {
            let Ok(mut last) = self.last.lock() else {
                return;
            };
            if now.duration_since(*last) < self.every {
                return;
            }
            *last = now;
        }
        (self.sink)(&what());
    }
}

/// Ticks an optional [`Progress`].
pub fn tick(progress: Option<&Progress>, what: impl FnOnce() -> String) {
    if let Some(p) = progress {
        p.tick(what);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn reports_at_most_once_a_period() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let p = Progress::new(Duration::from_secs(3600), move |l| {
            s.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(l.to_string())
        });
        p.tick(|| "too soon".into());
        assert!(seen.lock().unwrap_or_else(|e| e.into_inner()).is_empty());

        let s = seen.clone();
        let p = Progress::new(Duration::ZERO, move |l| {
            s.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(l.to_string())
        });
        p.tick(|| "one".into());
        p.tick(|| "two".into());
        assert_eq!(
            *seen.lock().unwrap_or_else(|e| e.into_inner()),
            ["one", "two"]
        );
    }
}
