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
//! * **Ed25519** (Standard Webhooks `v1a`), for endpoints created with `signature_scheme: "ed25519"`: the
//!   endpoint's secret is a signing key, `whsk_` + standard base64 of its 32-byte seed, never shown; receivers get
//!   the public key, `whpk_` + standard base64 of its 32 bytes. The signed content is the same as for `v1`, the
//!   signature is `v1a,` + standard base64 of the 64-byte Ed25519 signature, in `webhook-signature`. Such an
//!   endpoint gets no `casapay-signature` header: Stripe's scheme has no asymmetric variant.
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
pub use crate::domain::webhook::SIGNING_KEY_PREFIX;
/// An Ed25519 public key, as Standard Webhooks names it.
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";

/// A new endpoint secret: "whsec_" + standard base64 (with padding) of 32 random bytes.
pub fn new_secret() -> String {
    // rand's thread RNG is a CSPRNG seeded from the OS.
    let bytes: [u8; 32] = rand::random();
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// A new Ed25519 signing key: "whsk_" + standard base64 of a random 32-byte seed.
pub fn new_signing_key() -> String {
    let seed: [u8; 32] = rand::random();
    format!("{SIGNING_KEY_PREFIX}{}", STANDARD.encode(seed))
}

/// The Ed25519 key of a "whsk_" secret; None for any other secret.
fn ed25519_key(secret: &str) -> Option<ed25519_dalek::SigningKey> {
    let seed: [u8; 32] = STANDARD.decode(secret.strip_prefix(SIGNING_KEY_PREFIX)?).ok()?.try_into().ok()?;
    Some(ed25519_dalek::SigningKey::from_bytes(&seed))
}

/// Whether `secret` is an Ed25519 signing key rather than an HMAC secret.
pub fn is_signing_key(secret: &str) -> bool {
    secret.starts_with(SIGNING_KEY_PREFIX)
}

/// The public key ("whpk_" + base64) of an Ed25519 signing key; None for an HMAC secret.
pub fn public_key(secret: &str) -> Option<String> {
    let key = ed25519_key(secret)?;
    Some(format!("{PUBLIC_KEY_PREFIX}{}", STANDARD.encode(key.verifying_key().as_bytes())))
}

/// Standard Webhooks asymmetric signature "v1a,<base64(Ed25519(key, "{msg_id}.{timestamp}.{body}"))>"; None
/// unless `secret` is a valid "whsk_" key.
pub fn ed25519_signature(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    use ed25519_dalek::Signer as _;
    let key = ed25519_key(secret)?;
    let mut content = Vec::with_capacity(msg_id.len() + body.len() + 24);
    content.extend_from_slice(msg_id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(timestamp.to_string().as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    Some(format!("v1a,{}", STANDARD.encode(key.sign(&content).to_bytes())))
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
    /// Value of the `casapay-signature` header (Stripe scheme); None when only Ed25519 keys sign.
    pub casapay_signature: Option<String>,
}

/// webhook_signature: the standard signatures joined by a single space ("v1,aaa v1,bbb", or "v1a,..." for
/// Ed25519 keys); casapay_signature: "t={timestamp},v1={hex1},v1={hex2}" (Stripe's header format: one t, one v1
/// per HMAC secret), None when every secret is an Ed25519 key. HMAC secrets that are not valid whsec_ base64 are
/// skipped for the standard header but still used for the Stripe one.
pub fn signature_headers(secrets: &[&str], msg_id: &str, timestamp: i64, body: &[u8]) -> SignatureHeaders {
    let webhook_signature = secrets
        .iter()
        .filter_map(|secret| {
            if is_signing_key(secret) {
                ed25519_signature(secret, msg_id, timestamp, body)
            } else {
                standard_signature(secret, msg_id, timestamp, body)
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    let mut casapay_signature = format!("t={timestamp}");
    let mut hmac_secrets = secrets.iter().filter(|s| !is_signing_key(s)).peekable();
    let any_hmac = hmac_secrets.peek().is_some();
    for secret in hmac_secrets {
        casapay_signature.push_str(",v1=");
        casapay_signature.push_str(&stripe_signature(secret, timestamp, body));
    }
    SignatureHeaders { webhook_signature, casapay_signature: any_hmac.then_some(casapay_signature) }
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

    /// RFC 8032, section 7.1, test 2: the seed, its public key, and the signature of the one-byte message 0x72.
    #[test]
    fn ed25519_rfc8032_vector() {
        let seed = hex::decode("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb").unwrap();
        let key = format!("{SIGNING_KEY_PREFIX}{}", STANDARD.encode(&seed));
        let public = hex::decode("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c").unwrap();
        assert_eq!(public_key(&key), Some(format!("{PUBLIC_KEY_PREFIX}{}", STANDARD.encode(public))));
        use ed25519_dalek::Signer as _;
        let signature = ed25519_key(&key).unwrap().sign(&[0x72]).to_bytes();
        assert_eq!(
            hex::encode(signature),
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
             085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        );
    }

    #[test]
    fn ed25519_keys_sign_v1a_and_not_the_stripe_header() {
        let key = new_signing_key();
        let h = signature_headers(&[&key], "msg_1", 1_700_000_000, b"{}");
        assert!(h.webhook_signature.starts_with("v1a,"), "{}", h.webhook_signature);
        assert_eq!(h.casapay_signature, None);
        assert_eq!(h.webhook_signature, ed25519_signature(&key, "msg_1", 1_700_000_000, b"{}").unwrap());
        // A rotated-out HMAC secret beside a new key: each header carries what it can.
        let both = signature_headers(&[&key, STD_SECRET], "msg_1", 1_700_000_000, b"{}");
        let schemes: Vec<&str> = both.webhook_signature.split(' ').map(|s| s.split(',').next().unwrap()).collect();
        assert_eq!(schemes, ["v1a", "v1"]);
        assert_eq!(both.casapay_signature.unwrap().matches(",v1=").count(), 1);
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
        assert_eq!(h.casapay_signature, Some(expected));
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
        assert_eq!(h.casapay_signature, Some(format!("t={STD_TIMESTAMP},{}", stripe.join(","))));
    }

    #[test]
    fn signature_headers_stripe_vector_single_secret() {
        let h = signature_headers(&[STRIPE_SECRET], "msg_x", STRIPE_TIMESTAMP, STRIPE_BODY);
        assert_eq!(h.casapay_signature, Some(format!("t=1700000000,v1={STRIPE_SIGNATURE}")));
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
        assert_eq!(h.casapay_signature, Some(expected));
    }
}
