//! The id of the secret that signed each session and API key (migration 0006), counted for
//! `ashgate secrets status` ([`crate::rotation`]).

use sqlx::Row;

use super::Store;
use crate::error::Result;

impl Store {
    /// Live sessions (refresh token not spent, not expired) and unexpired API keys, per
    /// `secret_id` (None: rows from before ids were recorded).
    pub async fn live_rows_by_secret(&self, now_ms: i64) -> Result<Vec<(Option<String>, u64, u64)>> {
        let sessions = sqlx::query(
            "SELECT secret_id, COUNT(*) AS n FROM refresh_tokens \
             WHERE rotated_at IS NULL AND expires_at > $1 GROUP BY secret_id",
        )
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        let keys = sqlx::query(
            "SELECT secret_id, COUNT(*) AS n FROM api_keys \
             WHERE expires_at IS NULL OR expires_at > $1 GROUP BY secret_id",
        )
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<(Option<String>, u64, u64)> = Vec::new();
        for (rows, is_key) in [(sessions, false), (keys, true)] {
            for row in rows {
                let id: Option<String> = row.try_get("secret_id")?;
                let n = u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0);
                let entry = match out.iter().position(|(i, _, _)| *i == id) {
                    Some(p) => out.get_mut(p),
                    None => {
                        out.push((id, 0, 0));
                        out.last_mut()
                    }
                };
                if let Some(entry) = entry {
                    if is_key { entry.2 += n } else { entry.1 += n }
                }
            }
        }
        Ok(out)
    }

    /// Gives rows signed before ids were recorded the id of `current`: run only when no previous
    /// secret is configured, so `current` is the one secret that can verify them (a row another
    /// secret signed is already refused, and being counted here keeps nothing alive).
    pub async fn attribute_unnamed_rows(&self, current: &str) -> Result<u64> {
        let mut done = 0;
        for sql in [
            "UPDATE refresh_tokens SET secret_id = $1 WHERE secret_id IS NULL",
            "UPDATE api_keys SET secret_id = $1 WHERE secret_id IS NULL",
        ] {
            done += sqlx::query(sql).bind(current).execute(&self.pool).await?.rows_affected();
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_live_rows_count_and_unnamed_rows_get_the_current_id() {
        let path = std::env::temp_dir().join(format!(
            "ashgate-secret-ids-{}-{}.db",
            std::process::id(),
            rand::random::<u32>()
        ));
        let store = Store::connect(&format!("sqlite://{}?mode=rwc", path.display())).await.unwrap();
        let now = 1_000_000;
        let setup = [
            "INSERT INTO users (email, username, role, auth_method, created_at, updated_at) VALUES ('a@x.com', 'a', 'ADMIN', 'LOCAL', 1, 1)",
            // Sessions: live under 'aa', spent under 'aa', expired under 'bb', live under 'bb', live from before ids.
            "INSERT INTO refresh_tokens (user_id, family_id, nonce_hash, created_at, expires_at, secret_id) VALUES (1, 1, x'00', 5, 2000000, 'aa')",
            "INSERT INTO refresh_tokens (user_id, family_id, nonce_hash, created_at, expires_at, rotated_at, secret_id) VALUES (1, 1, x'00', 5, 2000000, 7, 'aa')",
            "INSERT INTO refresh_tokens (user_id, family_id, nonce_hash, created_at, expires_at, secret_id) VALUES (1, 3, x'00', 5, 1000000, 'bb')",
            "INSERT INTO refresh_tokens (user_id, family_id, nonce_hash, created_at, expires_at, secret_id) VALUES (1, 4, x'00', 5, 1000001, 'bb')",
            "INSERT INTO refresh_tokens (user_id, family_id, nonce_hash, created_at, expires_at) VALUES (1, 5, x'00', 5, 2000000)",
            // Keys: no expiry under 'aa', expired under 'aa', future expiry under 'cc', two from before ids.
            "INSERT INTO api_keys (user_id, name, nonce_hash, created_at, secret_id) VALUES (1, 'k1', x'00', 5, 'aa')",
            "INSERT INTO api_keys (user_id, name, nonce_hash, created_at, expires_at, secret_id) VALUES (1, 'k2', x'00', 5, 999999, 'aa')",
            "INSERT INTO api_keys (user_id, name, nonce_hash, created_at, expires_at, secret_id) VALUES (1, 'k3', x'00', 5, 3000000, 'cc')",
            "INSERT INTO api_keys (user_id, name, nonce_hash, created_at) VALUES (1, 'k4', x'00', 5)",
            "INSERT INTO api_keys (user_id, name, nonce_hash, created_at) VALUES (1, 'k5', x'00', 5)",
        ];
        for sql in setup {
            sqlx::query(sql).execute(&store.pool).await.unwrap();
        }
        let sorted = |mut rows: Vec<(Option<String>, u64, u64)>| {
            rows.sort();
            rows
        };
        let counts = sorted(store.live_rows_by_secret(now).await.unwrap());
        let expected = [
            (None, 1, 2),
            (Some("aa".to_owned()), 1, 1),
            (Some("bb".to_owned()), 1, 0),
            (Some("cc".to_owned()), 0, 1),
        ];
        assert_eq!(counts, expected);
        // Three rows had no id (one session, two keys); they get the current one.
        assert_eq!(store.attribute_unnamed_rows("bb").await.unwrap(), 3);
        let counts = sorted(store.live_rows_by_secret(now).await.unwrap());
        let expected =
            [(Some("aa".to_owned()), 1, 1), (Some("bb".to_owned()), 2, 2), (Some("cc".to_owned()), 0, 1)];
        assert_eq!(counts, expected);
        assert_eq!(store.attribute_unnamed_rows("bb").await.unwrap(), 0, "nothing left to attribute");
        store.close().await;
        let _ = std::fs::remove_file(&path);
    }
}
