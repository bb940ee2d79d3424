//! The two questions every pattern asks, answered with a significance test so that random,
//! unrelated endings produce nothing:
//!
//! - **same value** ([`value_clusters`]): do several connections share one duration (idle time,
//!   age, delay after an unanswered ping) more closely than chance allows?
//! - **same instant** ([`time_bursts`]): did several connections end in one short window, more
//!   than the background rate of endings explains?
//!
//! Both scan every window, so the chance of one window looking that full by luck is multiplied
//! by the number of windows tried (a Bonferroni bound) before it is compared with
//! [`SIGNIFICANCE`].

/// Largest chance, after correcting for the windows tried, that a pattern is luck. One in ten
/// thousand: a noisy capture of thousands of endings still gives no false pattern, while four
/// connections cut after the same 60.0 s of silence pass easily (their chance is about 1e-9).
pub const SIGNIFICANCE: f64 = 1e-4;

/// Widest relative tolerance of "the same duration": timers of proxies and libraries fire within
/// milliseconds, and what the capture measures (last packet to FIN) adds a round trip; 2 % of T
/// covers both for T from a second to hours, and is tight enough to tell 55 s (Heroku) from
/// 60 s (nginx, AWS ALB).
pub const VALUE_TOLERANCE: f64 = 0.02;

/// The tolerances tried, narrowest first, as (relative, absolute seconds): a tight cluster (a
/// precise timer: nginx's and HAProxy's fire within a millisecond) is judged against a narrow
/// window, so that five connections within 0.1 % stand out even among many similar durations;
/// sloppier timers and longer round trips fall in the wider ones. Each window is one more trial
/// in the significance correction.
pub const VALUE_SCALES: [(f64, f64); 5] = [
    (0.001, 0.005),
    (0.0025, 0.01),
    (0.005, 0.02),
    (0.01, 0.03),
    (VALUE_TOLERANCE, VALUE_SLACK_S),
];

/// Absolute slack of the widest tolerance: scheduling and round trips on a loaded host.
pub const VALUE_SLACK_S: f64 = 0.05;

/// Is P(X >= k) for X ~ Poisson(lambda), times `trials`, below [`SIGNIFICANCE`]? Returns the
/// corrected chance when it is, None when not. Most windows are ruled out without the exact
/// sum: the tail is at least its first term e^-lambda lambda^k / k!, which by Stirling is the
/// Chernoff bound e^-lambda (e lambda / k)^k divided by sqrt(2 pi k) e^(1/12k) at most; when even
/// that lower bound is too large, so is the tail.
fn significant(k: usize, lambda: f64, trials: f64) -> Option<f64> {
    let kf = k as f64;
    if k == 0 || kf <= lambda {
        return None; // at least about a half
    }
    let log_chernoff = -lambda + kf * (1.0 + lambda.ln() - kf.ln());
    let log_first_term_at_least =
        log_chernoff - 0.5 * (2.0 * std::f64::consts::PI * kf).ln() - 1.0 / (12.0 * kf);
    if log_first_term_at_least + trials.ln() >= SIGNIFICANCE.ln() {
        return None;
    }

    let p = (poisson_tail(k, lambda) * trials).min(1.0);
    (p < SIGNIFICANCE).then_some(p)
}

/// P(X >= k) for X ~ Poisson(lambda).
pub fn poisson_tail(k: usize, lambda: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if lambda <= 0.0 {
        return 0.0;
    }
    // Sum the terms from k upwards in log space (the lower sum loses everything to rounding
    // when the tail is tiny).
    let mut log_term = -lambda + k as f64 * lambda.ln() - ln_factorial(k);
    if log_term < -700.0 && k as f64 > lambda {
        return 0.0; // below the smallest f64 the sum could reach
    }
    let mut sum = 0.0;
    let mut i = k;
    loop {
        let term = log_term.exp();
        sum += term;
        i += 1;
        log_term += lambda.ln() - (i as f64).ln();
        if term < sum * 1e-12 || i > k + 10_000 {
            break;
        }
    }
    sum.min(1.0)
}

fn ln_factorial(n: usize) -> f64 {
    if n < 64 {
        (2..=n).map(|i| (i as f64).ln()).sum()
    } else {
        // Stirling with two correction terms: exact to 1e-10 here.
        let n = n as f64;
        n * n.ln() - n + 0.5 * (2.0 * std::f64::consts::PI * n).ln() + 1.0 / (12.0 * n)
            - 1.0 / (360.0 * n * n * n)
    }
}

/// A group of samples sharing one value.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// Indices of the members (into the caller's sample list).
    pub members: Vec<usize>,
    /// Their median value.
    pub value: f64,
    /// Smallest and largest member value.
    pub min: f64,
    /// Largest member value.
    pub max: f64,
    /// Chance of a cluster this full by luck, corrected for the windows tried.
    pub p: f64,
}

/// Half-width, as a ratio, of "the same value" around `v` at tolerance `scale`.
fn tolerance(v: f64, (relative, absolute): (f64, f64)) -> f64 {
    1.0 + relative + absolute / v.max(1e-9)
}

/// The values (all > 0) that several samples share more closely than chance explains, most
/// significant first, members disjoint. `min_members`: the fewest samples that make a pattern.
///
/// Chance is judged against the samples' own spread: durations of unrelated endings spread over
/// orders of magnitude, so windows are compared in log space, with the background density taken
/// as the larger of the whole sample's and that of the band between half and twice the value
/// (so a crowd of similar but not equal durations does not pass for a timeout).
pub fn value_clusters(values: &[f64], min_members: usize) -> Vec<Cluster> {
    let mut order: Vec<(f64, usize)> = values
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, v)| v.is_finite() && *v > 0.0)
        .map(|(i, v)| (v.ln(), i))
        .collect();
    if order.len() < min_members.max(2) {
        return Vec::new();
    }
    order.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = order.len();
    let logs: Vec<f64> = order.iter().map(|x| x.0).collect();
    let linear: Vec<f64> = values_of(&order, values);
    // The whole sample's spread, at least a factor of e: a handful of samples within a few
    // percent of each other is still a pattern, but their spread says nothing about noise.
    let range = (logs[n - 1] - logs[0]).max(1.0);
    let band = std::f64::consts::LN_2;
    let trials = (n * VALUE_SCALES.len()) as f64;
    let mut candidates = Vec::new();
    for scale in VALUE_SCALES {
        for i in 0..n {
            // The window starts at sample i and spans twice the tolerance: found in linear
            // space (no logarithm for the many windows too empty to matter).
            let t = tolerance(linear[i], scale);
            let j = linear.partition_point(|&v| v <= linear[i] * t * t) - 1;
            let k = j - i + 1;
            if k < min_members {
                continue;
            }
            let width = 2.0 * t.ln();
            let lo = logs[i] - band;
            let hi = logs[i] + width + band;
            let in_band = logs.partition_point(|&x| x <= hi) - logs.partition_point(|&x| x < lo);
            let local = in_band.saturating_sub(k) as f64 * width / (hi - lo - width);
            let global = (n - k) as f64 * width / range;
            let lambda = local.max(global).max(1e-9);
            // The window starts at a sample: the chance is that of k - 1 more.
            if let Some(p) = significant(k - 1, lambda, trials) {
                candidates.push((p, i, j));
            }
        }
    }
    // Most significant first; a window overlapping a chosen one is dropped.
    candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.2.cmp(&a.2)));
    let mut taken = vec![false; n];
    let mut out = Vec::new();
    for (p, i, j) in candidates {
        if taken[i..=j].iter().any(|&t| t) {
            continue;
        }
        taken[i..=j].iter_mut().for_each(|t| *t = true);
        let vals: Vec<f64> = linear[i..=j].to_vec();
        out.push(Cluster {
            members: (i..=j).map(|x| order[x].1).collect(),
            value: crate::analysis::ping::median(&vals).unwrap_or(vals[0]),
            min: vals[0],
            max: vals[vals.len() - 1],
            p,
        });
    }
    out
}

/// The values of the sorted samples, in their order.
fn values_of(order: &[(f64, usize)], values: &[f64]) -> Vec<f64> {
    order.iter().map(|&(_, i)| values[i]).collect()
}

/// A run of events in one short window.
#[derive(Debug, Clone, PartialEq)]
pub struct Burst {
    /// Indices of the members (into the caller's time list).
    pub members: Vec<usize>,
    /// First and last member's time.
    pub first: f64,
    /// Last member's time.
    pub last: f64,
    /// Chance of a window this full by luck, corrected for the windows tried.
    pub p: f64,
}

/// Windows of at most `window` seconds holding at least `min_members` of `times`, more than the
/// background rate (the other events spread over the capture's span) explains; most significant
/// first, members disjoint.
pub fn time_bursts(times: &[f64], window: f64, min_members: usize, span: f64) -> Vec<Burst> {
    let mut order: Vec<(f64, usize)> = times
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, t)| t.is_finite())
        .map(|(i, t)| (t, i))
        .collect();
    let n = order.len();
    if n < min_members.max(2) {
        return Vec::new();
    }
    order.sort_by(|a, b| a.0.total_cmp(&b.0));
    // At least 20 windows of span: a capture that is all one burst still leaves room for chance.
    let span = span.max(20.0 * window);
    let mut candidates = Vec::new();
    let mut j = 0;
    for i in 0..n {
        j = j.max(i);
        while j + 1 < n && order[j + 1].0 - order[i].0 <= window {
            j += 1;
        }
        let k = j - i + 1;
        if k < min_members {
            continue;
        }
        let lambda = ((n - k) as f64 * window / span).max(1e-9);
        // The window starts at an event: the chance is that of k - 1 more.
        if let Some(p) = significant(k - 1, lambda, n as f64) {
            candidates.push((p, i, j));
        }
    }
    candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.2.cmp(&a.2)));
    let mut taken = vec![false; n];
    let mut out = Vec::new();
    for (p, i, j) in candidates {
        if taken[i..=j].iter().any(|&t| t) {
            continue;
        }
        taken[i..=j].iter_mut().for_each(|t| *t = true);
        out.push(Burst {
            members: (i..=j).map(|x| order[x].1).collect(),
            first: order[i].0,
            last: order[j].0,
            p,
        });
    }
    out
}

/// Confidence from the number of connections showing a pattern: 3 give 0.6, 5 give 0.84,
/// 8 give 0.96. Findings scale it down for contradicting evidence.
pub fn count_confidence(k: usize) -> f64 {
    1.0 - 0.5f64.powf((k.max(1) - 1) as f64 / 1.5)
}

/// Rounds a confidence for the report.
pub fn round2(x: f64) -> f64 {
    (x.clamp(0.0, 1.0) * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_tail_matches_known_values() {
        // P(X >= 1) = 1 - e^-1; P(X >= 3 | 0.1) = 1 - e^-0.1 (1 + 0.1 + 0.005)
        assert!((poisson_tail(1, 1.0) - (1.0 - (-1.0f64).exp())).abs() < 1e-12);
        let want = 1.0 - (-0.1f64).exp() * (1.0 + 0.1 + 0.005);
        assert!((poisson_tail(3, 0.1) - want).abs() < 1e-12);
        assert_eq!(poisson_tail(0, 5.0), 1.0);
        assert!(poisson_tail(200, 1.0) < 1e-300 || poisson_tail(200, 1.0) == 0.0);
        assert!((poisson_tail(70, 70.0) - 0.5).abs() < 0.05);
    }

    #[test]
    fn the_quick_bound_never_rejects_what_the_exact_tail_accepts() {
        for k in 1..40 {
            for lambda in [1e-6, 1e-3, 0.05, 0.3, 1.0, 3.0, 10.0, 30.0] {
                for trials in [1.0, 10.0, 1e4] {
                    let exact = (poisson_tail(k, lambda) * trials).min(1.0);
                    let quick = significant(k, lambda, trials);
                    assert_eq!(
                        quick.is_some(),
                        exact < SIGNIFICANCE,
                        "{k} {lambda} {trials}"
                    );
                }
            }
        }
    }

    #[test]
    fn same_durations_among_spread_ones_cluster() {
        let mut v = vec![60.01, 60.02, 59.99, 60.0, 60.03];
        v.extend([0.7, 3.0, 12.0, 45.0, 95.0, 200.0, 410.0]);
        let c = value_clusters(&v, 3);
        assert_eq!(c.len(), 1);
        let mut m = c[0].members.clone();
        m.sort();
        assert_eq!(m, [0, 1, 2, 3, 4]);
        assert!((c[0].value - 60.01).abs() < 1e-9);
    }

    #[test]
    fn evenly_spread_durations_do_not_cluster() {
        let v: Vec<f64> = (0..500).map(|i| 1.0 + i as f64 * 0.37).collect();
        assert!(value_clusters(&v, 3).is_empty());
    }

    #[test]
    fn endings_at_one_instant_burst() {
        let mut t: Vec<f64> = (0..100).map(|i| i as f64 * 3.1).collect();
        t.extend((0..12).map(|i| 150.0 + i as f64 * 0.001));
        let b = time_bursts(&t, 0.25, 3, 310.0);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].members.len(), 12);
        assert_eq!(b[0].first, 150.0);
        let even: Vec<f64> = (0..1000).map(|i| i as f64 * 0.3).collect();
        assert!(time_bursts(&even, 0.25, 3, 300.0).is_empty());
    }

    #[test]
    fn confidence_grows_with_the_connections() {
        assert_eq!(round2(count_confidence(3)), 0.6);
        assert_eq!(round2(count_confidence(5)), 0.84);
        assert!(count_confidence(20) > 0.99);
    }
}
