//! The limits' records in Redis, each operation one Lua script so that replicas racing on the
//! same subject cannot both get an attempt the threshold leaves room for only once.
//!
//! Keys of a subject `S` (a hashed email under the namespace): `S:g` its generation (a reset
//! increments it; absent = 0), and under `S:<generation>`: `:<addr>:n` an address's failures,
//! `:<addr>:lock` its lock, `:*:n` the subject's failures from everywhere. Every key expires on
//! its own, so nothing needs sweeping.

use std::time::Duration;

use redis::aio::ConnectionManager;

use super::{Reserved, Thresholds};

/// ARGV: subject, address, per-address allowance, under-attack threshold (0 = none), window
/// ms, lockout ms. Returns {1, generation} when reserved, {0, generation} when refused.
const RESERVE: &str = r"
local gen = redis.call('GET', ARGV[1] .. ':g') or '0'
local base = ARGV[1] .. ':' .. gen
local pn = base .. ':' .. ARGV[2] .. ':n'
local pl = base .. ':' .. ARGV[2] .. ':lock'
local sn = base .. ':*:n'
if redis.call('EXISTS', pl) == 1 then return {0, tonumber(gen)} end
local allowed = tonumber(ARGV[3])
local threshold = tonumber(ARGV[4])
if threshold > 0 and tonumber(redis.call('GET', sn) or '0') >= threshold then allowed = 1 end
local failures = tonumber(redis.call('GET', pn) or '0')
if failures >= allowed then
  redis.call('SET', pl, 1, 'PX', ARGV[6])
  redis.call('DEL', pn)
  return {0, tonumber(gen)}
end
failures = redis.call('INCR', pn)
redis.call('PEXPIRE', pn, ARGV[5])
if failures >= allowed then
  redis.call('SET', pl, 1, 'PX', ARGV[6])
  redis.call('DEL', pn)
end
if threshold > 0 then
  redis.call('INCR', sn)
  redis.call('PEXPIRE', sn, ARGV[5])
end
if gen ~= '0' then redis.call('PEXPIRE', ARGV[1] .. ':g', tonumber(ARGV[5]) + tonumber(ARGV[6])) end
return {1, tonumber(gen)}
";

/// ARGV: subject, generation, address, whether the subject count was taken (1/0).
const RELEASE: &str = r"
local base = ARGV[1] .. ':' .. ARGV[2]
redis.call('DEL', base .. ':' .. ARGV[3] .. ':n', base .. ':' .. ARGV[3] .. ':lock')
if ARGV[4] == '1' then
  local sn = base .. ':*:n'
  if tonumber(redis.call('GET', sn) or '0') > 0 then redis.call('DECR', sn) end
end
return 1
";

/// GCRA token bucket. KEYS: bucket. ARGV: emission interval ms, capacity. Returns 1 if allowed.
const TAKE_TOKEN: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local nxt = tat + interval
if nxt - now > capacity * interval then return 0 end
redis.call('SET', KEYS[1], nxt, 'PX', math.ceil(capacity * interval))
return 1
";

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Reserves an attempt: `Some(generation)`, or `None` when the address is locked out.
pub async fn reserve(
    redis: &mut ConnectionManager,
    subject: &str,
    addr: &str,
    t: Thresholds,
) -> redis::RedisResult<Option<u64>> {
    let (reserved, generation): (i64, u64) = redis::Script::new(RESERVE)
        .arg(subject)
        .arg(addr)
        .arg(t.per_address)
        .arg(t.under_attack)
        .arg(millis(t.window))
        .arg(millis(t.lockout))
        .invoke_async(redis)
        .await?;
    Ok((reserved == 1).then_some(generation))
}

/// Releases a reservation that succeeded.
pub async fn release(redis: &mut ConnectionManager, reserved: &Reserved) -> redis::RedisResult<()> {
    let _: i64 = redis::Script::new(RELEASE)
        .arg(&reserved.subject)
        .arg(reserved.generation)
        .arg(&reserved.addr)
        .arg(u8::from(reserved.counted_subject))
        .invoke_async(redis)
        .await?;
    Ok(())
}

/// Starts a new generation of `subject`, kept for `keep` (longer than any record lives).
pub async fn clear(redis: &mut ConnectionManager, subject: &str, keep: Duration) -> redis::RedisResult<()> {
    let key = format!("{subject}:g");
    redis::pipe().incr(&key, 1).ignore().pexpire(&key, millis(keep) as i64).ignore().query_async(redis).await
}

/// Takes a token from the bucket `key`.
pub async fn take(
    redis: &mut ConnectionManager,
    key: &str,
    capacity: f64,
    interval: Duration,
) -> redis::RedisResult<bool> {
    let allowed: i64 = redis::Script::new(TAKE_TOKEN)
        .key(key)
        .arg(millis(interval))
        .arg(capacity)
        .invoke_async(redis)
        .await?;
    Ok(allowed == 1)
}
