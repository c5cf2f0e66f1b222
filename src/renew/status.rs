//! `mayfly renew --status`: one row per certificate with its expiry, its next renewal and the
//! last result, from the files and the state file alone (no network).

use anyhow::Result;
use time::OffsetDateTime;

use super::agent::rfc3339;
use super::config::AgentConfig;
use super::inspect;
use super::schedule::{self, Current, Decision, Window};
use super::state::State;

/// The longest last result shown; the state file has the whole text.
const RESULT_WIDTH: usize = 80;

pub fn table(config: &AgentConfig, now: OffsetDateTime) -> Result<String> {
    let state = State::load(&config.account.state_path())?;
    let mut rows = vec![[
        "CERTIFICATE".to_owned(),
        "EXPIRES".to_owned(),
        "NEXT RENEWAL".to_owned(),
        "LAST RESULT".to_owned(),
    ]];
    for certificate in &config.certificates {
        let id = certificate.id();
        let remembered = state.certificates.get(id).cloned().unwrap_or_default();
        let inspected = inspect::inspect(certificate);
        let expires = match &inspected.current {
            Current::Missing => "missing".to_owned(),
            Current::Unreadable(_) => "unreadable".to_owned(),
            Current::Present(installed) => rfc3339(installed.not_after),
        };
        let current_pick = remembered.pick.filter(|_| {
            remembered.pick_serial.is_some() && remembered.pick_serial == inspected.serial
        });
        let window = match (
            current_pick,
            remembered.ari_window_start,
            remembered.ari_window_end,
        ) {
            (Some(_), Some(start), Some(end)) => Some(Window { start, end }),
            _ => None,
        };
        let decision = schedule::decide(
            now,
            &certificate.name_set(),
            &inspected.current,
            window,
            current_pick.unwrap_or(0.5),
        );
        let next = match decision {
            Decision::At { at, reason } => format!(
                "{} ({})",
                rfc3339(at),
                match reason {
                    schedule::Reason::AriWindow => "ARI window".to_owned(),
                    _ => "2/3 of lifetime".to_owned(),
                }
            ),
            Decision::Now(reason) => format!("now ({reason})"),
        };
        let mut last = match (&remembered.last_result, remembered.last_attempt) {
            (Some(result), Some(at)) => format!("{} {result}", rfc3339(at)),
            (Some(result), None) => result.clone(),
            _ => "-".to_owned(),
        };
        if let Some((index, _)) = last.char_indices().nth(RESULT_WIDTH) {
            last.truncate(index);
            last.push('…');
        }
        rows.push([id.to_owned(), expires, next, last]);
    }
    let widths: Vec<usize> = (0..3)
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        for (column, width) in widths.iter().enumerate() {
            out.push_str(&format!("{:<width$}  ", row[column]));
        }
        out.push_str(&row[3]);
        out.push('\n');
    }
    Ok(out)
}
