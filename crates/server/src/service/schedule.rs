//! Schedules: a function deployed with `schedule=EXPR` (a cron expression,
//! 5 fields or 6 with seconds first, in UTC) gets an async call queued at
//! each tick, through the same queue as `POST /async/NAME`, so retries and
//! dead letters apply. The expression and its payload are function
//! settings, stored in each version's metadata (they survive restarts and
//! travel with the cluster store).
//!
//! Each tick is queued with the dedupe key `schedule:NAME:TICK_UNIX_SECONDS`:
//! a restart that fires a tick again, or a second replica sharing a queue
//! that deduplicates (NATS JetStream's message id), queues it once.
//!
//! Missed ticks: while the ticker runs it wakes at every tick, so each
//! fires (a wake-up made late by a loaded machine queues each tick it
//! passed). After a stop, the ticks missed meanwhile are skipped but the
//! latest one, which is by definition younger than one interval (the
//! next has not come), is queued at start. What was fired is
//! remembered per function in `.schedules.json` under the functions
//! directory (the last [`RECENT`] ticks with their call ids, for
//! `GET /schedules` and the dashboard).

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use faas_proto::{FunctionMeta, FunctionSettings, ServiceError};
use faas_queue::NewCall;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::background::policy_of;
use super::*;

/// The fired ticks, beside the queue file (hidden for the same reason).
pub const SCHEDULE_FILE: &str = ".schedules.json";
/// The largest `schedule_payload` (it travels in the deploy's URL, and is
/// copied into every tick's call).
pub const MAX_SCHEDULE_PAYLOAD: usize = 4096;
/// The longest expression (cron needs far less; this bounds what is
/// parsed and stored).
const MAX_EXPRESSION: usize = 200;
/// Ticks remembered per function.
pub const RECENT: usize = 20;
/// Longest the ticker sleeps: a schedule deployed meanwhile is looked at
/// within this.
const MAX_SLEEP: Duration = Duration::from_secs(1);
/// Most ticks one late wake-up of a running ticker queues.
const MAX_CATCH_UP: usize = 10;
/// The dedupe keys of ticks start with this; the rest is `NAME:SECONDS`.
const KEY_PREFIX: &str = "schedule:";

/// Parses a schedule: 5 fields (minute hour day month weekday), 6 with
/// seconds first, or a nickname (`@hourly`...). Years are not a field:
/// a 7th field is refused, whatever it was meant to be.
pub fn parse(expr: &str) -> Result<Cron, String> {
    let shown: String = expr.chars().take(64).collect();
    if expr.len() > MAX_EXPRESSION {
        return Err(format!(
            "schedule is {} bytes long; at most {MAX_EXPRESSION}",
            expr.len()
        ));
    }
    let fields = expr.split_whitespace().count();
    if fields > 6 {
        return Err(format!(
            "schedule '{shown}' has {fields} fields: a schedule fires at most once a second, \
             so 6 fields (seconds first) is the finest, and there is no year field"
        ));
    }
    if fields < 5 && !expr.trim_start().starts_with('@') {
        return Err(format!(
            "schedule '{shown}' has {fields} fields; a cron expression has 5 \
             (minute hour day month weekday) or 6 (seconds first)"
        ));
    }
    let cron = CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|e| format!("schedule '{shown}' is not a valid cron expression: {e}"))?;
    // An expression that parses may still never match (30 February).
    if next_tick(&cron, now_millis() / 1000).is_none() {
        return Err(format!("schedule '{shown}' never fires"));
    }
    Ok(cron)
}

fn at(secs: u64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(i64::try_from(secs).ok()?, 0)
}

/// The first tick after `secs` (Unix seconds).
pub fn next_tick(cron: &Cron, secs: u64) -> Option<u64> {
    let next = cron.find_next_occurrence(&at(secs)?, false).ok()?;
    u64::try_from(next.timestamp()).ok()
}

/// The ticks after `since` up to `now` included, the last
/// [`MAX_CATCH_UP`] of them.
fn ticks_between(cron: &Cron, since: u64, now: u64) -> Vec<u64> {
    let mut ticks = VecDeque::new();
    let mut at = since;
    while let Some(tick) = next_tick(cron, at).filter(|t| *t <= now) {
        ticks.push_back(tick);
        if ticks.len() > MAX_CATCH_UP {
            ticks.pop_front();
        }
        at = tick;
    }
    ticks.into()
}

/// The last tick at or before `secs`.
fn latest_tick(cron: &Cron, secs: u64) -> Option<u64> {
    let last = cron.find_previous_occurrence(&at(secs)?, true).ok()?;
    u64::try_from(last.timestamp()).ok()
}

/// Settles a deploy's schedule settings, refusing bad ones (400, before
/// anything is stored). On an update (`previous` is the current
/// version's settings) no `schedule=` keeps the previous schedule and,
/// unless a new one is given, its payload; an empty `schedule=` removes
/// it. The result holds a trimmed, valid expression or none.
pub fn settle(
    settings: &mut FunctionSettings,
    previous: Option<&FunctionSettings>,
) -> Result<(), ServiceError> {
    if let Some(payload) = &settings.schedule_payload {
        if payload.len() > MAX_SCHEDULE_PAYLOAD {
            return Err(ServiceError::bad_request(format!(
                "schedule_payload is {} bytes; at most {MAX_SCHEDULE_PAYLOAD}",
                payload.len()
            )));
        }
    }
    match settings.schedule.as_deref().map(str::trim) {
        None => {
            if let Some(prev) = previous.filter(|p| p.schedule.is_some()) {
                settings.schedule.clone_from(&prev.schedule);
                if settings.schedule_payload.is_none() {
                    settings.schedule_payload.clone_from(&prev.schedule_payload);
                }
            }
        }
        Some("") => settings.schedule = None,
        Some(expr) => {
            parse(expr).map_err(ServiceError::bad_request)?;
            settings.schedule = Some(expr.to_string());
        }
    }
    if settings.schedule.is_none() && settings.schedule_payload.is_some() {
        return Err(ServiceError::bad_request(
            "schedule_payload is the stdin of scheduled calls: it needs a schedule=",
        ));
    }
    Ok(())
}

/// A tick that was fired: its time and the call it queued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fired {
    /// Unix seconds.
    pub tick: u64,
    pub call: String,
}

/// The ticks fired per function, kept on disk.
pub struct Schedules {
    path: PathBuf,
    fired: Mutex<BTreeMap<String, VecDeque<Fired>>>,
}

impl Schedules {
    /// Reads what was fired before (a missing file: nothing; an unreadable
    /// one is logged and started afresh: at worst one tick per function
    /// is queued again, and its dedupe key keeps that to one call).
    pub fn open(functions_dir: &Path) -> Self {
        let path = functions_dir.join(SCHEDULE_FILE);
        let fired = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|err| {
                log::error!(target: PART, "{}: {err}; starting with no fired ticks", path.display());
                BTreeMap::new()
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(err) => {
                log::error!(target: PART, "{}: {err}; starting with no fired ticks", path.display());
                BTreeMap::new()
            }
        };
        Self {
            path,
            fired: Mutex::new(fired),
        }
    }

    /// The last tick fired for `name`.
    fn last(&self, name: &str) -> Option<u64> {
        let fired = self.fired.lock().expect("schedules");
        fired.get(name).and_then(|f| f.back()).map(|f| f.tick)
    }

    /// The ticks fired for `name`, newest first.
    fn recent(&self, name: &str) -> Vec<Fired> {
        let fired = self.fired.lock().expect("schedules");
        fired
            .get(name)
            .map(|f| f.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    fn record(&self, name: &str, tick: Fired) {
        let mut fired = self.fired.lock().expect("schedules");
        let ticks = fired.entry(name.to_string()).or_default();
        ticks.push_back(tick);
        while ticks.len() > RECENT {
            ticks.pop_front();
        }
        self.save(&fired);
    }

    /// Forgets the functions that no longer have a schedule.
    fn keep_only(&self, scheduled: &[&str]) {
        let mut fired = self.fired.lock().expect("schedules");
        let before = fired.len();
        fired.retain(|name, _| scheduled.contains(&name.as_str()));
        if fired.len() != before {
            self.save(&fired);
        }
    }

    /// Writes the file whole, through a rename: a crash leaves the old
    /// file or the new one.
    fn save(&self, fired: &BTreeMap<String, VecDeque<Fired>>) {
        let tmp = self.path.with_extension("json.tmp");
        let written = serde_json::to_vec(fired)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        if let Err(err) = written {
            log::error!(target: PART, "writing {}: {err}", self.path.display());
        }
    }
}

/// The tick a scheduled call was queued for, from its dedupe key
/// (`FAAS_SCHEDULE_TICK`).
pub fn tick_of(call: &faas_queue::Call) -> Option<u64> {
    let key = call.spec.dedupe.as_deref()?.strip_prefix(KEY_PREFIX)?;
    key.rsplit(':').next()?.parse().ok()
}

/// A scheduled function: its latest version and parsed expression.
fn scheduled(store: &crate::store::FunctionStore) -> Vec<(Arc<FunctionMeta>, Cron)> {
    store
        .latest_with_counts()
        .into_iter()
        .filter_map(|(meta, _)| {
            let expr = meta.settings.schedule.as_deref()?;
            match parse(expr) {
                Ok(cron) => Some((meta, cron)),
                Err(err) => {
                    // Refused at deploy; a version stored by an older
                    // server could still carry one.
                    log::warn!(target: PART, "{}: {err}; not scheduled", meta.name);
                    None
                }
            }
        })
        .collect()
}

impl Service {
    /// The ticker: fires each scheduled function's due tick, then sleeps
    /// until the next tick of any (at most [`MAX_SLEEP`]).
    pub async fn run_schedules(self: Arc<Self>) {
        let started = now_millis() / 1000;
        loop {
            let now_ms = now_millis();
            let mut wake_ms = now_ms + MAX_SLEEP.as_millis() as u64;
            let functions = scheduled(&self.store);
            let names: Vec<&str> = functions.iter().map(|(m, _)| m.name.as_str()).collect();
            blocking(|| self.background.schedules.keep_only(&names));
            let draining = self.draining.load(std::sync::atomic::Ordering::Relaxed);
            for (meta, cron) in &functions {
                // A stopping server fires nothing: the next start queues
                // the latest tick it missed.
                if !draining {
                    self.fire_due(meta, cron, now_ms / 1000, started);
                }
                if let Some(next) = next_tick(cron, now_ms / 1000) {
                    wake_ms = wake_ms.min(next * 1000);
                }
            }
            let wait = Duration::from_millis(wake_ms.saturating_sub(now_millis()).max(1));
            tokio::time::sleep(wait).await;
        }
    }

    /// Queues `meta`'s due ticks: those after the last one fired (and
    /// after the version was published) up to `now` (Unix seconds). When
    /// the last one fired was before this server `started`, the ticks in
    /// between were missed while it was down: only the latest is queued.
    /// While it runs, a wake-up that came late (a loaded machine) queues
    /// each tick it passed, at most [`MAX_CATCH_UP`].
    fn fire_due(&self, meta: &FunctionMeta, cron: &Cron, now: u64, started: u64) {
        let fired = self.background.schedules.last(&meta.name);
        // A tick before the version was published belongs to no schedule
        // of it (on a first deploy, nothing is "missed").
        let since = fired.unwrap_or(0).max(meta.created);
        let ticks = if since < started {
            latest_tick(cron, now)
                .filter(|tick| *tick > since)
                .into_iter()
                .collect()
        } else {
            ticks_between(cron, since, now)
        };
        for tick in ticks {
            self.fire(meta, tick);
        }
    }

    /// Queues the call of `meta`'s `tick`.
    fn fire(&self, meta: &FunctionMeta, tick: u64) {
        let schedules = &self.background.schedules;
        let spec = NewCall {
            function: meta.name.clone(),
            payload: meta
                .settings
                .schedule_payload
                .clone()
                .unwrap_or_default()
                .into_bytes()
                .into(),
            request_id: None,
            http: None,
            policy: policy_of(&meta.settings),
            dedupe: Some(format!("{KEY_PREFIX}{}:{tick}", meta.name)),
            callback_url: None,
            callback_allow: Vec::new(),
        };
        let queued_at = now_millis();
        let queue = &self.background.queue;
        match blocking(|| queue.enqueue(spec, queued_at)) {
            Ok(call) => {
                // The same tick queued before (a replay its key caught)
                // is not counted twice.
                if call.created_ms == queued_at {
                    self.metrics.schedule_tick();
                }
                log::debug!(target: PART, "{} tick {tick}: async call {}", meta.name, call.id);
                blocking(|| {
                    schedules.record(
                        &meta.name,
                        Fired {
                            tick,
                            call: call.id.clone(),
                        },
                    )
                });
                self.background.wake();
            }
            Err(err) => log::error!(target: PART, "{} tick {tick} not queued: {err}", meta.name),
        }
    }

    /// `GET /schedules`: each scheduled function's expression, payload
    /// size, next tick, and its recent ticks with their calls' status
    /// (`purged` once the call's result is no longer kept).
    pub fn schedules(&self) -> Vec<serde_json::Value> {
        let now = now_millis() / 1000;
        let queue = &self.background.queue;
        scheduled(&self.store)
            .iter()
            .map(|(meta, cron)| {
                let recent: Vec<serde_json::Value> = self
                    .background
                    .schedules
                    .recent(&meta.name)
                    .into_iter()
                    .map(|fired| {
                        let status = match blocking(|| queue.get(&fired.call)) {
                            Ok(Some(call)) => call.status.to_string(),
                            Ok(None) => "purged".to_string(),
                            Err(_) => "unknown".to_string(),
                        };
                        json!({"tick": fired.tick, "call_id": fired.call, "status": status})
                    })
                    .collect();
                json!({
                    "function": meta.name,
                    "schedule": meta.settings.schedule,
                    "payload_bytes": meta.settings.schedule_payload.as_ref().map_or(0, String::len),
                    "next_tick": next_tick(cron, now),
                    "last": recent.first(),
                    "recent": recent,
                })
            })
            .collect()
    }
}

/// Runs blocking work (the queue, the state file) off the reactor.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_and_six_fields_parse_and_tick_on_time() {
        let every_minute = parse("* * * * *").unwrap();
        assert_eq!(next_tick(&every_minute, 120), Some(180));
        assert_eq!(latest_tick(&every_minute, 179), Some(120));
        let every_two_seconds = parse("*/2 * * * * *").unwrap();
        assert_eq!(next_tick(&every_two_seconds, 100), Some(102));
        assert_eq!(latest_tick(&every_two_seconds, 101), Some(100));
        assert_eq!(ticks_between(&every_two_seconds, 100, 107), [102, 104, 106]);
        assert!(ticks_between(&every_two_seconds, 100, 101).is_empty());
        let every_second = parse("* * * * * *").unwrap();
        let late = ticks_between(&every_second, 0, 1000);
        assert_eq!(late, (991..=1000).collect::<Vec<u64>>());
        assert!(parse("@hourly").is_ok());
        // Sunday is 0 (and 7), as in Vixie cron.
        let sundays = parse("0 12 * * 0").unwrap();
        // 1970-01-04 was a Sunday.
        assert_eq!(next_tick(&sundays, 0), Some(3 * 86_400 + 12 * 3600));
    }

    #[test]
    fn bad_expressions_are_refused_with_the_reason() {
        for (expr, says) in [
            ("* * * *", "4 fields"),
            ("*/100 * * * * * *", "at most once a second"),
            ("0 0 30 2 *", "never fires"),
            ("61 * * * *", "not a valid cron"),
            ("*/0.5 * * * * *", "not a valid cron"),
            ("every minute please", "3 fields"),
        ] {
            let err = parse(expr).unwrap_err();
            assert!(err.contains(says), "{expr}: {err}");
        }
        assert!(parse(&"1,".repeat(200)).unwrap_err().contains("at most"));
    }

    #[test]
    fn an_update_keeps_or_removes_the_schedule() {
        let previous = FunctionSettings {
            schedule: Some("* * * * *".into()),
            schedule_payload: Some("p".into()),
            ..Default::default()
        };
        let mut kept = FunctionSettings::default();
        settle(&mut kept, Some(&previous)).unwrap();
        assert_eq!(kept.schedule.as_deref(), Some("* * * * *"));
        assert_eq!(kept.schedule_payload.as_deref(), Some("p"));
        let mut removed = FunctionSettings {
            schedule: Some(" ".into()),
            ..Default::default()
        };
        settle(&mut removed, Some(&previous)).unwrap();
        assert_eq!((removed.schedule, removed.schedule_payload), (None, None));
        let mut orphan = FunctionSettings {
            schedule_payload: Some("x".into()),
            ..Default::default()
        };
        assert!(settle(&mut orphan, None).is_err());
        let mut big = FunctionSettings {
            schedule: Some("* * * * *".into()),
            schedule_payload: Some("x".repeat(MAX_SCHEDULE_PAYLOAD + 1)),
            ..Default::default()
        };
        assert!(settle(&mut big, None).is_err());
    }

    #[test]
    fn the_tick_comes_back_from_the_dedupe_key() {
        let call = faas_queue::Call {
            id: "1".into(),
            spec: NewCall {
                dedupe: Some("schedule:my-fn:1700000000".into()),
                ..Default::default()
            },
            status: faas_queue::Status::Queued,
            created_ms: 0,
            updated_ms: 0,
            due_ms: 0,
            finished_ms: None,
            attempts: Vec::new(),
            round_start: 0,
            output: None,
            callback: None,
        };
        assert_eq!(tick_of(&call), Some(1_700_000_000));
    }
}
