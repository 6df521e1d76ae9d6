//! Token decoding and kind checks (identity-svc's `TokenCodec`), the gateway's OAuth2 `state`
//! signer, GlobalID decoding and the return-URL rule, on arbitrary text. A token that decodes
//! must have been signed with the secret: anything the fuzzer builds without it must fail.
#![no_main]

use std::sync::OnceLock;

use ashgate_gateway::global_id;
use ashgate_gateway::oauth2::state::{StateSigner, is_safe_return_url};
use ashgate_identity::secret::Secret;
use ashgate_identity::token::{Nonce, TokenCodec, TokenId, TokenKind};
use libfuzzer_sys::fuzz_target;

/// The secret of the fuzz corpus's genuine tokens (fuzz/run writes them with this secret).
const SECRET: &str = "fuzz-secret-0123456789abcdefghijklmnop";

struct Fixtures {
    codec: TokenCodec,
    signer: StateSigner,
    genuine: String,
}

fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let codec = TokenCodec::new(&Secret::new(SECRET));
        let genuine = codec
            .issue(TokenId { kind: TokenKind::ApiKey, id: 7 }, &Nonce::generate(), 0, None)
            .unwrap_or_default();
        Fixtures { codec, signer: StateSigner::new(Some(&Secret::new(SECRET))), genuine }
    })
}

fuzz_target!(|data: &[u8]| {
    let fixtures = fixtures();
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(decoded) = fixtures.codec.decode(text) {
        // Only our own signature gets here: the fuzzer cannot compute HMAC-SHA256, so a decoded
        // token must be the genuine one (or one of the corpus tokens signed with SECRET).
        assert!(
            matches!(
                decoded.id.kind,
                TokenKind::Access | TokenKind::Refresh | TokenKind::PasswordReset | TokenKind::ApiKey
            ),
            "decoded an unknown kind"
        );
        assert!(text.len() <= 2048);
    }
    // Splice the input into a genuine token: header, payload or signature replaced.
    let parts: Vec<&str> = fixtures.genuine.split('.').collect();
    if let [header, payload, signature] = parts[..] {
        for forged in [
            format!("{text}.{payload}.{signature}"),
            format!("{header}.{text}.{signature}"),
            format!("{header}.{payload}.{text}"),
        ] {
            if forged != fixtures.genuine {
                assert!(fixtures.codec.decode(&forged).is_err(), "a spliced token verified: {forged}");
            }
        }
    }
    let _ = fixtures.signer.verify(text, 0);
    if is_safe_return_url(text) {
        // A safe return URL is a path on this site.
        assert!(text.starts_with('/') && !text.starts_with("//") && !text.contains('\\'));
    }
    let _ = global_id::decode(text);
    let _ = global_id::decode_id(text, "User");
});
