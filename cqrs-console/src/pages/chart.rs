//! A small lag chart: an inline SVG drawn on the server, no script.

use maud::{html, Markup};

use crate::samples::Sample;

const WIDTH: u32 = 200;
const HEIGHT: u32 = 40;

/// A line of the samples' lag, scaled to the largest; a note when there are too few.
pub(crate) fn lag(samples: &[Sample]) -> Markup {
    if samples.len() < 2 {
        return html! { span.muted { "collecting samples" } };
    }
    let max = samples
        .iter()
        .map(|s| s.lag_events)
        .max()
        .unwrap_or(0)
        .max(1);
    let last = samples.len() - 1;
    let points: Vec<String> = samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let x = f64::from(WIDTH) * to_f64(i) / to_f64(last);
            let y =
                f64::from(HEIGHT - 2) * (1.0 - to_f64_u64(s.lag_events) / to_f64_u64(max)) + 1.0;
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let first_at = samples.first().map(|s| s.at);
    let last_at = samples.last().map(|s| s.at);
    let minutes = match (first_at, last_at) {
        (Some(a), Some(b)) => (b - a).whole_seconds().max(0) / 60,
        _ => 0,
    };
    let label = format!("lag over the last {minutes} min, at most {max} events");
    html! {
        svg.chart role="img" width=(WIDTH) height=(HEIGHT) viewBox={"0 0 " (WIDTH) " " (HEIGHT)} {
            title { (label) }
            polyline fill="none" stroke="currentColor" stroke-width="1.5" points=(points.join(" ")) {}
        }
        span.muted { "max " (max) }
    }
}

fn to_f64(n: usize) -> f64 {
    // Sample counts are small (a few hundred at most).
    f64::from(u32::try_from(n).unwrap_or(u32::MAX))
}

fn to_f64_u64(n: u64) -> f64 {
    // Precision past 2^53 events does not matter to a 40-pixel chart.
    #[allow(clippy::cast_precision_loss)]
    let value = n as f64;
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::{Duration, OffsetDateTime};

    fn samples(lags: &[u64]) -> Vec<Sample> {
        let start = OffsetDateTime::UNIX_EPOCH;
        (lags.iter().enumerate())
            .map(|(i, &lag_events)| Sample {
                at: start + Duration::seconds(i64::try_from(i).unwrap() * 30),
                lag_events,
            })
            .collect()
    }

    #[test]
    fn a_chart_draws_one_point_per_sample_scaled_to_the_largest_lag() {
        let svg = lag(&samples(&[0, 50, 100, 0, 0])).into_string();
        assert!(svg.starts_with("<svg"), "{svg}");
        let points = svg
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let points: Vec<&str> = points.split(' ').collect();
        assert_eq!(points.len(), 5);
        // The largest lag is at the top (y = 1), no lag at the bottom (y = 39).
        assert_eq!(points[2], "100.0,1.0");
        assert_eq!(points[0], "0.0,39.0");
        assert!(svg.contains("last 2 min, at most 100 events"), "{svg}");
    }

    #[test]
    fn fewer_than_two_samples_draw_no_chart() {
        assert!(!lag(&samples(&[7])).into_string().contains("<svg"));
        assert!(!lag(&[]).into_string().contains("<svg"));
    }
}
