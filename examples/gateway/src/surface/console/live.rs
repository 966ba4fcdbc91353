//! What the dashboard shows live: per-door totals read from the gateway's own counters (the
//! Prometheus registry every surface already feeds, and the HL7 tap), a ring of per-minute
//! counts covering the last day, open connections per door and the health of the store and
//! the DICOM journal. One sampler task updates it every second; the dashboard's event stream
//! reads snapshots of it.

use crate::Gateway;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The doors the dashboard shows, in order: `(id, name, what it counts)`.
pub const DOORS: [(&str, &str, &str); 5] = [
    ("fhir", "FHIR", "requests"),
    ("hl7", "HL7 HTTP", "messages"),
    ("mpps", "MPPS", "requests"),
    ("mllp", "MLLP", "messages"),
    ("dicom", "DICOM", "instances"),
];

/// `(accepted, errors)` per door since start.
pub type Totals = [(u64, u64); 5];

/// Minutes in the ring: one day.
const MINUTES: usize = 24 * 60;
/// Seconds of totals kept for the per-minute rate (the last 60 s, and one more).
const SECONDS: usize = 61;

/// Routes of the HTTP surfaces that are not traffic of the door (probes, documentation).
fn is_admin_route(route: &str) -> bool {
    route == crate::surface::http::HEALTH_PATH
        || route == "/metrics"
        || route.starts_with("/api/documentation")
        || route == "unmatched"
}

/// Reads one `name{labels} value` line of the Prometheus text into its labels and value.
fn sample(line: &str) -> Option<(BTreeMap<&str, &str>, u64)> {
    let open = line.find('{')?;
    let close = line.rfind('}')?;
    let value = line[close + 1..].trim().parse().ok()?;
    let mut labels = BTreeMap::new();
    for part in line[open + 1..close].split("\",") {
        let (k, v) = part.split_once("=\"")?;
        labels.insert(k.trim_start_matches(','), v.trim_end_matches('"'));
    }
    Some((labels, value))
}

/// The per-door totals now: FHIR and MPPS from the HTTP request counters (status below 400
/// accepted), HL7 HTTP and MLLP from the tap, DICOM from the ingest counters.
pub fn totals(gw: &Gateway) -> Totals {
    let mut t: Totals = [(0, 0); 5];
    for line in gw.metrics.render().lines() {
        let (door, ok) = if line.starts_with("xenrad_http_requests_total{") {
            let Some((l, _)) = sample(line) else { continue };
            let route = l.get("route").copied().unwrap_or_default();
            if is_admin_route(route) {
                continue;
            }
            let ok = l
                .get("status")
                .and_then(|s| s.parse::<u16>().ok())
                .is_some_and(|s| s < 400);
            match l.get("surface").copied() {
                Some("fhir") => (0, ok),
                Some("mpps") => (2, ok),
                _ => continue,
            }
        } else if line.starts_with("xenrad_ingest_total{protocol=\"dicom\"") {
            let Some((l, _)) = sample(line) else { continue };
            (
                4,
                matches!(l.get("outcome").copied(), Some("stored" | "duplicate")),
            )
        } else {
            continue;
        };
        let n = sample(line).map_or(0, |(_, n)| n);
        if ok {
            t[door].0 += n;
        } else {
            t[door].1 += n;
        }
    }
    t[1] = gw.console.hl7_http().get();
    t[3] = gw.console.mllp().get();
    t
}

#[derive(Clone, Copy, Default)]
struct Minute {
    minute: u64,
    counts: Totals,
}

struct Ring {
    minutes: Vec<Minute>,
    seconds: Vec<(u64, Totals)>,
    last: Totals,
    health: Value,
}

/// The live state behind the dashboard.
pub struct Live {
    ring: Mutex<Ring>,
    started: Instant,
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Live {
    /// Empty, with `baseline` as the totals already counted.
    pub fn new(baseline: Totals) -> Self {
        Live {
            ring: Mutex::new(Ring {
                minutes: vec![Minute::default(); MINUTES],
                seconds: Vec::new(),
                last: baseline,
                health: Value::Null,
            }),
            started: Instant::now(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds what was counted since the last call to the current minute.
    pub fn record(&self, now_secs: u64, totals: Totals) {
        let mut r = self.lock();
        let minute = now_secs / 60;
        let slot = &mut r.minutes[(minute as usize) % MINUTES];
        if slot.minute != minute {
            *slot = Minute {
                minute,
                counts: [(0, 0); 5],
            };
        }
        let last = r.last;
        let slot = &mut r.minutes[(minute as usize) % MINUTES];
        for (i, (a, e)) in totals.iter().enumerate() {
            slot.counts[i].0 += a.saturating_sub(last[i].0);
            slot.counts[i].1 += e.saturating_sub(last[i].1);
        }
        r.last = totals;
        r.seconds.push((now_secs, totals));
        if r.seconds.len() > SECONDS {
            r.seconds.remove(0);
        }
    }

    /// Per-minute counts `(accepted, errors)` of each door for the `n` minutes up to now,
    /// oldest first, summed over `step` minutes.
    fn series(&self, now_secs: u64, n: u64, step: u64) -> Vec<Totals> {
        let r = self.lock();
        let now = now_secs / 60;
        let first = now + 1 - n * step;
        (0..n)
            .map(|b| {
                let mut t: Totals = [(0, 0); 5];
                for m in first + b * step..first + (b + 1) * step {
                    let slot = r.minutes[(m as usize) % MINUTES];
                    if slot.minute == m {
                        for (i, c) in slot.counts.iter().enumerate() {
                            t[i].0 += c.0;
                            t[i].1 += c.1;
                        }
                    }
                }
                t
            })
            .collect()
    }

    /// Counted in the last 60 seconds, per door.
    fn last_minute(&self) -> Totals {
        let r = self.lock();
        let (Some(first), Some(last)) = (r.seconds.first(), r.seconds.last()) else {
            return [(0, 0); 5];
        };
        std::array::from_fn(|i| {
            (
                last.1[i].0.saturating_sub(first.1[i].0),
                last.1[i].1.saturating_sub(first.1[i].1),
            )
        })
    }

    /// Replaces the health report.
    pub fn set_health(&self, h: Value) {
        self.lock().health = h;
    }

    /// The dashboard snapshot (what `/api/dashboard` answers and each event carries).
    #[allow(clippy::cast_precision_loss)] // percentages of counts
    pub fn snapshot(&self, gw: &Gateway) -> Value {
        let now = unix_secs();
        let totals = totals(gw);
        let minute = self.last_minute();
        let open = open_connections(gw);
        let doors: Vec<Value> = DOORS
            .iter()
            .enumerate()
            .map(|(i, (id, name, unit))| {
                let (a, e) = totals[i];
                let all = a + e;
                let pct = |n: u64| {
                    if all == 0 {
                        Value::Null
                    } else {
                        json!((n as f64 * 1000.0 / all as f64).round() / 10.0)
                    }
                };
                json!({
                    "id": id, "name": name, "unit": unit,
                    "accepted": a, "errors": e, "total": all,
                    "per_minute": minute[i].0 + minute[i].1,
                    "acceptance_pct": pct(a), "error_pct": pct(e),
                    "open": open[i],
                })
            })
            .collect();
        let chart = |n: u64, step: u64| {
            let s = self.series(now, n, step);
            let mut per_door = serde_json::Map::new();
            for (i, (id, ..)) in DOORS.iter().enumerate() {
                per_door.insert(
                    (*id).to_owned(),
                    json!({
                        "accepted": s.iter().map(|t| t[i].0).collect::<Vec<_>>(),
                        "errors": s.iter().map(|t| t[i].1).collect::<Vec<_>>(),
                    }),
                );
            }
            json!({"minutes_per_point": step, "points": n, "end": now, "doors": per_door})
        };
        json!({
            "time": crate::store::now(),
            "uptime_s": self.started.elapsed().as_secs(),
            "doors": doors,
            "hour": chart(60, 1),
            "day": chart(144, 10),
            "health": self.lock().health.clone(),
        })
    }
}

/// Established TCP connections whose local port is `addr`'s, from `/proc/net/tcp{,6}` (so
/// every door is measured alike without instrumenting its server; DICOM associations are
/// its connections). `None` where the table is not readable (not Linux).
fn established(tables: &[String], port: u16) -> u64 {
    let hex = format!(":{port:04X}");
    tables
        .iter()
        .flat_map(|t| t.lines().skip(1))
        .filter(|l| {
            let mut f = l.split_whitespace();
            let local = f.nth(1).unwrap_or_default();
            let state = f.nth(1).unwrap_or_default();
            state == "01" && local.ends_with(&hex)
        })
        .count() as u64
}

/// Open connections per door (`null` when unknown).
pub fn open_connections(gw: &Gateway) -> [Value; 5] {
    let tables: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    let c = &gw.config;
    let addrs: [SocketAddr; 5] = [
        c.fhir_addr,
        c.hl7_addr,
        c.mpps_addr,
        c.mllp_addr,
        c.dicom_addr,
    ];
    addrs.map(|a| {
        if tables.is_empty() {
            Value::Null
        } else {
            json!(established(&tables, a.port()))
        }
    })
}

fn dir_size(dir: &std::path::Path) -> (u64, u64) {
    std::fs::read_dir(dir).map_or((0, 0), |rd| {
        rd.filter_map(Result::ok)
            .filter_map(|e| e.metadata().ok())
            .filter(std::fs::Metadata::is_file)
            .fold((0, 0), |(n, b), m| (n + 1, b + m.len()))
    })
}

/// Store and journal health: a timed read of the store, the data directory's free space, the
/// database and WAL sizes, the DICOM journal's lanes and the message log's backlog.
pub async fn health(gw: &Gateway) -> Value {
    let started = Instant::now();
    let read = gw.store.read(|tx| tx.count_messages("hl7v2")).await;
    let read_ms = started.elapsed().as_secs_f64() * 1000.0;
    let dir = &gw.config.data_dir;
    let size = |p: &str| std::fs::metadata(dir.join(p)).map_or(0, |m| m.len());
    let free = rustix::fs::statvfs(dir.as_path())
        .ok()
        .map(|s| s.f_bavail.saturating_mul(s.f_frsize));
    let total = rustix::fs::statvfs(dir.as_path())
        .ok()
        .map(|s| s.f_blocks.saturating_mul(s.f_frsize));
    let (lanes, journal_bytes) = dir_size(&dir.join("dicom").join(".xenrad-journal"));
    let store_ok = read.is_ok();
    let low_space = matches!((free, total), (Some(f), Some(t)) if t > 0 && f * 20 < t);
    json!({
        "store": {
            "ok": store_ok,
            "error": read.err().map(|e| e.to_string()),
            "read_ms": (read_ms * 10.0).round() / 10.0,
            "database_bytes": size("xenrad.sqlite3"),
            "wal_bytes": size("xenrad.sqlite3-wal"),
            "hl7v2_messages": Value::Null,
        },
        "disk": {"free_bytes": free, "total_bytes": total, "low": low_space},
        "journal": {"lanes": lanes, "bytes": journal_bytes, "ok": lanes > 0},
        "message_log": {"dropped": gw.console.dropped()},
        "status": if store_ok && !low_space { "ok" } else { "degraded" },
    })
}

/// Runs the sampler until `stop` resolves: totals every second, health every five.
pub async fn sample_loop(gw: Gateway, live: std::sync::Arc<Live>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut n = 0u64;
    loop {
        tick.tick().await;
        live.record(unix_secs(), totals(&gw));
        if n.is_multiple_of(5) {
            live.set_health(health(&gw).await);
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_prometheus_samples() {
        let (l, v) = sample(
            "xenrad_http_requests_total{surface=\"fhir\",route=\"/fhir/Patient\",status=\"201\"} 7",
        )
        .unwrap();
        assert_eq!(v, 7);
        assert_eq!(l["surface"], "fhir");
        assert_eq!(l["route"], "/fhir/Patient");
        assert_eq!(l["status"], "201");
    }

    #[test]
    fn ring_sums_per_minute_and_wraps() {
        let live = Live::new([(0, 0); 5]);
        let t0 = 1_000_000 * 60;
        live.record(t0, [(1, 0), (0, 0), (0, 0), (0, 0), (0, 0)]);
        live.record(t0 + 30, [(3, 1), (0, 0), (0, 0), (0, 0), (0, 0)]);
        live.record(t0 + 60, [(4, 1), (0, 0), (0, 0), (0, 0), (0, 2)]);
        let s = live.series(t0 + 60, 2, 1);
        assert_eq!(s[0][0], (3, 1));
        assert_eq!(s[1][0], (1, 0));
        assert_eq!(s[1][4], (0, 2));
        // A day later the same slot holds the new minute only.
        live.record(t0 + 60 * 1440, [(5, 1), (0, 0), (0, 0), (0, 0), (0, 2)]);
        let s = live.series(t0 + 60 * 1440, 1, 1);
        assert_eq!(s[0][0], (1, 0));
    }

    #[test]
    fn counts_established_connections_by_local_port() {
        let t = "  sl  local_address rem_address   st\n   0: 0100007F:1F90 00000000:0000 0A\n   1: 0100007F:1F90 0100007F:D2F0 01\n   2: 0100007F:0BB8 0100007F:D2F1 01\n".to_owned();
        assert_eq!(established(std::slice::from_ref(&t), 8080), 1);
        assert_eq!(established(std::slice::from_ref(&t), 3000), 1);
        assert_eq!(established(&[t], 11112), 0);
    }
}
