//! Webhook signatures.
//!
//! Every delivery is signed twice, with the same endpoint secret(s), so that receivers can verify it with whichever
//! library they already have:
//!
//! * **Standard Webhooks** (<https://www.standardwebhooks.com/>), header `webhook-signature`: the secret is
//!   `whsec_` + standard base64; the HMAC key is the base64-decoded part. The signed content is
//!   `"{msg_id}.{timestamp}.{body}"` and the signature is `v1,` + standard base64 of the HMAC-SHA256. Several
//!   signatures are separated by a single space.
//! * **Stripe scheme**, header `casapay-signature`: the HMAC key is the whole secret string as bytes (including the
//!   `whsec_` prefix, as Stripe's libraries do), the signed content is `"{timestamp}.{body}"`, and the header is
//!   `t={timestamp},v1={hex},v1={hex}` with one lower-case hex HMAC-SHA256 per secret.
//!
//! After a secret rotation the current secret and every secret it superseded in the last 24 hours sign each delivery
//! (the current one first, then the others newest first), so receivers keep verifying while they switch over, even
//! after several rotations in a day.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const SECRET_PREFIX: &str = "whsec_";

/// A new endpoint secret: "whsec_" + standard base64 (with padding) of 32 random bytes.
pub fn new_secret() -> String {
    // rand's thread RNG is a CSPRNG seeded from the OS.
    let bytes: [u8; 32] = rand::random();
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The HMAC key of a Standard Webhooks secret; None unless the secret is "whsec_" + non-empty valid base64.
fn standard_key(secret: &str) -> Option<Vec<u8>> {
    let key = STANDARD.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()?;
    (!key.is_empty()).then_some(key)
}

/// Standard Webhooks signature "v1,<base64(HMAC-SHA256(key, "{msg_id}.{timestamp}.{body}"))>" where key is the
/// base64-decoded part of the secret after the "whsec_" prefix. None if the secret is not "whsec_" + valid base64
/// (an empty key is refused too).
pub fn standard_signature(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = standard_key(secret)?;
    let timestamp = timestamp.to_string();
    let mac = hmac_sha256(&key, &[msg_id.as_bytes(), b".", timestamp.as_bytes(), b".", body]);
    Some(format!("v1,{}", STANDARD.encode(mac)))
}

/// Stripe-scheme signature: lower-case hex of HMAC-SHA256 keyed by the whole secret string (bytes of "whsec_..."),
/// over "{timestamp}.{body}".
pub fn stripe_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let timestamp = timestamp.to_string();
    hex::encode(hmac_sha256(secret.as_bytes(), &[timestamp.as_bytes(), b".", body]))
}

/// The two signature header values for one delivery attempt, signed with every secret in `secrets`
/// (the current one first, then those superseded in the last 24 hours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// Value of the `webhook-signature` header (Standard Webhooks).
    pub webhook_signature: String,
    /// Value of the `casapay-signature` header (Stripe scheme).
    pub casapay_signature: String,
}

/// webhook_signature: the standard signatures joined by a single space ("v1,aaa v1,bbb");
/// casapay_signature: "t={timestamp},v1={hex1},v1={hex2}" (Stripe's header format: one t, one v1 per secret).
/// Secrets that are not valid whsec_ base64 are skipped for the standard header but still used for the Stripe one.
pub fn signature_headers(secrets: &[&str], msg_id: &str, timestamp: i64, body: &[u8]) -> SignatureHeaders {
    let webhook_signature = secrets
        .iter()
        .filter_map(|secret| standard_signature(secret, msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ");
    let mut casapay_signature = format!("t={timestamp}");
    for secret in secrets {
        casapay_signature.push_str(",v1=");
        casapay_signature.push_str(&stripe_signature(secret, timestamp, body));
    }
    SignatureHeaders { webhook_signature, casapay_signature }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const STD_MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const STD_TIMESTAMP: i64 = 1614265330;
    const STD_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const STD_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    const STRIPE_SECRET: &str = "whsec_test_secret";
    const STRIPE_TIMESTAMP: i64 = 1700000000;
    const STRIPE_BODY: &[u8] = br#"{"id":"evt_test","object":"event"}"#;
    // Computed independently with Python's hmac module:
    // hmac.new(b"whsec_test_secret", b'1700000000.{"id":"evt_test","object":"event"}', hashlib.sha256).hexdigest()
    // and accepted by stripe-python's WebhookSignature.verify_header as "t=1700000000,v1=<this>".
    const STRIPE_SIGNATURE: &str = "8042376f6ca064adbe037642a718227dfd59047137eb49497a54c49eb0cfb724";

    #[test]
    fn standard_webhooks_published_vector() {
        assert_eq!(standard_signature(STD_SECRET, STD_MSG_ID, STD_TIMESTAMP, STD_BODY).as_deref(), Some(STD_SIGNATURE));
    }

    #[test]
    fn standard_signature_rejects_invalid_secrets() {
        // No prefix, bad base64, empty key.
        assert_eq!(standard_signature("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", STD_MSG_ID, STD_TIMESTAMP, STD_BODY), None);
        assert_eq!(standard_signature("whsec_not base64!", STD_MSG_ID, STD_TIMESTAMP, STD_BODY), None);
        assert_eq!(standard_signature("whsec_", STD_MSG_ID, STD_TIMESTAMP, STD_BODY), None);
    }

    #[test]
    fn stripe_scheme_vector() {
        assert_eq!(stripe_signature(STRIPE_SECRET, STRIPE_TIMESTAMP, STRIPE_BODY), STRIPE_SIGNATURE);
    }

    #[test]
    fn new_secret_shape() {
        let a = new_secret();
        let b = new_secret();
        let key = a.strip_prefix("whsec_").expect("prefix");
        assert_eq!(STANDARD.decode(key).expect("base64").len(), 32);
        assert_eq!(standard_key(&a).map(|k| k.len()), Some(32));
        assert_ne!(a, b);
        // Usable for both schemes.
        assert!(standard_signature(&a, "msg_1", 1, b"{}").is_some());
    }

    #[test]
    fn signature_headers_with_rotation() {
        let current = STD_SECRET;
        let previous = new_secret();
        let h = signature_headers(&[current, &previous], STD_MSG_ID, STD_TIMESTAMP, STD_BODY);

        let std_previous = standard_signature(&previous, STD_MSG_ID, STD_TIMESTAMP, STD_BODY).unwrap();
        assert_eq!(h.webhook_signature, format!("{STD_SIGNATURE} {std_previous}"));
        assert_eq!(h.webhook_signature.split(' ').count(), 2);

        let expected = format!(
            "t={STD_TIMESTAMP},v1={},v1={}",
            stripe_signature(current, STD_TIMESTAMP, STD_BODY),
            stripe_signature(&previous, STD_TIMESTAMP, STD_BODY)
        );
        assert_eq!(h.casapay_signature, expected);
    }

    #[test]
    fn signature_headers_carry_one_signature_per_secret() {
        let secrets = [new_secret(), new_secret(), new_secret()];
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let h = signature_headers(&secrets, STD_MSG_ID, STD_TIMESTAMP, STD_BODY);
        let standard: Vec<String> =
            secrets.iter().map(|s| standard_signature(s, STD_MSG_ID, STD_TIMESTAMP, STD_BODY).unwrap()).collect();
        assert_eq!(h.webhook_signature, standard.join(" "));
        let stripe: Vec<String> =
            secrets.iter().map(|s| format!("v1={}", stripe_signature(s, STD_TIMESTAMP, STD_BODY))).collect();
        assert_eq!(h.casapay_signature, format!("t={STD_TIMESTAMP},{}", stripe.join(",")));
    }

    #[test]
    fn signature_headers_stripe_vector_single_secret() {
        let h = signature_headers(&[STRIPE_SECRET], "msg_x", STRIPE_TIMESTAMP, STRIPE_BODY);
        assert_eq!(h.casapay_signature, format!("t=1700000000,v1={STRIPE_SIGNATURE}"));
        // "test_secret" is not valid base64 (11 chars), so there is no standard signature for it.
        assert_eq!(h.webhook_signature, "");
    }

    #[test]
    fn signature_headers_skip_invalid_secret_in_standard_header() {
        let invalid = "whsec_%%%not-base64%%%";
        let h = signature_headers(&[STD_SECRET, invalid], STD_MSG_ID, STD_TIMESTAMP, STD_BODY);
        assert_eq!(h.webhook_signature, STD_SIGNATURE);
        let expected = format!(
            "t={STD_TIMESTAMP},v1={},v1={}",
            stripe_signature(STD_SECRET, STD_TIMESTAMP, STD_BODY),
            stripe_signature(invalid, STD_TIMESTAMP, STD_BODY)
        );
        assert_eq!(h.casapay_signature, expected);
    }
}
