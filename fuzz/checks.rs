// The properties the fuzz targets check, shared (by `include!`) with the regression test that
// replays every seed and every input a fuzzing run found (examples/server/tests/fuzz_regressions.rs).

/// The webhook signing secret of the checks.
const WEBHOOK_SECRET: &str = "whsec_fuzz";
/// "Now" for the signature checks (unix seconds).
const NOW: i64 = 1_760_000_000;

/// `Stripe-Signature` parsing: input is a header line, a newline, then the payload. A header
/// the fuzzer made is refused with 400 `payments.invalid_signature` (it cannot know the
/// secret); the header Stripe would send for the same payload is accepted. Never a panic.
pub fn webhook_signature(data: &[u8]) {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let header = String::from_utf8_lossy(&data[..split]);
    let payload = data.get(split + 1..).unwrap_or_default();
    match saas_payments::webhooks::verify_signature(WEBHOOK_SECRET, &header, payload, NOW) {
        Ok(()) => panic!("a header made without the secret was accepted: {header:?}"),
        Err(err) => assert_eq!((err.status().as_u16(), err.code()), (400, "payments.invalid_signature")),
    }
    if let Ok(text) = std::str::from_utf8(payload) {
        let signed = saas_payments::testing::stripe_signature(WEBHOOK_SECRET, text, NOW);
        saas_payments::webhooks::verify_signature(WEBHOOK_SECRET, &signed, payload, NOW)
            .expect("Stripe's own header is accepted");
    }
}

/// JWT decoding: whatever the token, `decode` refuses it with 401 `auth.token_invalid` (it
/// cannot be signed with the server's key) and never panics.
pub fn jwt_decode(data: &[u8]) {
    static KEYS: std::sync::OnceLock<saas_auth::service::tokens::JwtKeys> = std::sync::OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        let config = saas_core::Config::from_vars([("DEBUG", "true"), ("SECRET_KEY", "fuzz-secret-key-0123456789abcdef")])
            .expect("configuration");
        saas_auth::service::tokens::JwtKeys::from_config(&config).expect("keys")
    });
    let token = String::from_utf8_lossy(data);
    match keys.decode(&token) {
        Ok(claims) => panic!("a forged token was accepted: {claims:?}"),
        Err(err) => assert_eq!((err.status().as_u16(), err.code()), (401, "auth.token_invalid")),
    }
}

/// Chat socket frames: any text is a frame the server acts on or answers with an `error`
/// frame carrying a code and a message. Never a panic.
pub fn chat_frame(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Err(frame) = saas_chat::hub::parse_client_frame(&text) {
        assert_eq!(frame["type"], "error", "{frame}");
        assert!(frame["code"].is_string() && frame["message"].is_string(), "{frame}");
    }
}
