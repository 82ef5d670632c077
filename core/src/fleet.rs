//! Shared fleet state in Redis: worker presence and kill-switch broadcast/acknowledgement.
//! Redis holds nothing that cannot be lost: presence expires, acknowledgements only speed up
//! `killswitch::engage`.

use std::collections::HashMap;

use fred::prelude::*;

pub const SWITCH_CHANNEL: &str = "autosocial:kill-switches";
/// Sorted set of worker ids scored by their last beat (Redis server time, ms).
pub const WORKERS: &str = "autosocial:workers";
/// A worker is alive while its last beat is younger than this.
pub const PRESENCE_TTL_MS: i64 = 15_000;

pub fn worker_key(id: &str) -> String {
    format!("autosocial:worker:{id}")
}

fn ack_key(switch: &str) -> String {
    format!("autosocial:kill-switch-ack:{switch}")
}

async fn server_ms(r: &Client) -> Result<i64, Error> {
    let t: Vec<i64> = r.custom(fred::cmd!("TIME"), Vec::<Value>::new()).await?;
    match t.as_slice() {
        [secs, micros] => Ok(secs * 1000 + micros / 1000),
        _ => Err(Error::new(ErrorKind::Protocol, "unexpected TIME reply")),
    }
}

/// Record a worker's beat with its details (host, pid, version, started, in-flight ...).
pub async fn beat(r: &Client, id: &str, fields: &[(&str, String)]) -> Result<(), Error> {
    let now = server_ms(r).await?;
    let key = worker_key(id);
    let mut map: HashMap<String, String> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    map.insert("last_beat_ms".into(), now.to_string());
    let pipe = r.pipeline();
    let _: () = pipe.hset(&key, map).await?;
    let _: () = pipe.pexpire(&key, PRESENCE_TTL_MS, None).await?;
    let _: () = pipe
        .zadd(WORKERS, None, None, false, false, (now as f64, id))
        .await?;
    let _: () = pipe
        .zremrangebyscore(WORKERS, f64::NEG_INFINITY, (now - PRESENCE_TTL_MS) as f64)
        .await?;
    let _: Vec<Value> = pipe.all().await?;
    Ok(())
}

/// Remove a worker's presence (clean shutdown).
pub async fn leave(r: &Client, id: &str) -> Result<(), Error> {
    let _: () = r.del(worker_key(id)).await?;
    let _: () = r.zrem(WORKERS, id).await?;
    Ok(())
}

/// Ids of workers that beat recently.
pub async fn live_workers(r: &Client) -> Result<Vec<String>, Error> {
    let now = server_ms(r).await?;
    r.zrangebyscore(
        WORKERS,
        (now - PRESENCE_TTL_MS) as f64,
        f64::INFINITY,
        false,
        None,
    )
    .await
}

/// Details of every live worker, for the console's fleet page.
pub async fn workers(r: &Client) -> Result<Vec<HashMap<String, String>>, Error> {
    let mut out = Vec::new();
    for id in live_workers(r).await? {
        let mut m: HashMap<String, String> = r.hgetall(worker_key(&id)).await?;
        if !m.is_empty() {
            m.insert("id".into(), id);
            out.push(m);
        }
    }
    Ok(out)
}

pub async fn publish_switch(r: &Client, switch: &str) -> Result<(), Error> {
    let _: i64 = r.publish(SWITCH_CHANNEL, switch).await?;
    Ok(())
}

pub async fn ack_switch(r: &Client, switch: &str, worker: &str) -> Result<(), Error> {
    let key = ack_key(switch);
    let _: () = r.sadd(&key, worker).await?;
    let _: () = r.expire(&key, 300, None).await?;
    Ok(())
}

pub async fn switch_acks(r: &Client, switch: &str) -> Result<Vec<String>, Error> {
    r.smembers(ack_key(switch)).await
}
