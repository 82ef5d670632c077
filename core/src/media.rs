//! Signed, expiring media URLs: platforms that fetch images themselves (Instagram, Facebook)
//! get `<public>/media/<path>?exp=<unix>&sig=<hex>`, where `sig` is an HMAC-SHA256 over the path
//! and the expiry with a key derived from the vault. The admin serves a file only when the
//! signature verifies and the expiry has not passed; anything else is 403.

use std::time::Duration;

use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;
use url::Url;

use crate::vault::Vault;

const PURPOSE: &str = "media-url/v1";

fn mac(key: &[u8], path: &str, exp: i64) -> [u8; 32] {
    let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("any key length");
    m.update(path.as_bytes());
    m.update(b"\n");
    m.update(exp.to_string().as_bytes());
    m.finalize().into_bytes().into()
}

/// Whether `path` is a media path we hand out: content-addressed `aa/<sha256 hex>.<ext>`,
/// nothing that could leave the media directory.
pub fn valid_path(path: &str) -> bool {
    let mut parts = path.split('/');
    let (Some(dir), Some(file), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Some((stem, ext)) = file.split_once('.') else {
        return false;
    };
    dir.len() == 2
        && stem.len() == 64
        && stem.starts_with(dir)
        && stem
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        && matches!(ext, "png" | "jpg" | "jpeg" | "webp" | "gif")
}

/// A URL for `path` (relative to the media directory) valid for `ttl` from `now_unix`.
pub fn sign(vault: &Vault, public: &Url, path: &str, now_unix: i64, ttl: Duration) -> Url {
    let exp = now_unix + ttl.as_secs() as i64;
    let key = &vault.mac_keys(PURPOSE)[0];
    let sig = hex::encode(mac(key.as_ref(), path, exp));
    let mut url = public
        .join(&format!("media/{path}"))
        .expect("a media path joins");
    url.query_pairs_mut()
        .append_pair("exp", &exp.to_string())
        .append_pair("sig", &sig);
    url
}

/// Why a media request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    BadPath,
    Expired,
    BadSignature,
}

/// Check a request for `path` carrying `exp` and `sig`.
pub fn verify(
    vault: &Vault,
    path: &str,
    exp: i64,
    sig: &str,
    now_unix: i64,
) -> Result<(), Refused> {
    if !valid_path(path) {
        return Err(Refused::BadPath);
    }
    let Ok(given) = hex::decode(sig) else {
        return Err(Refused::BadSignature);
    };
    let ok = vault
        .mac_keys(PURPOSE)
        .iter()
        .any(|k| bool::from(mac(k.as_ref(), path, exp).ct_eq(given.as_slice())));
    if !ok {
        return Err(Refused::BadSignature);
    }
    if exp < now_unix {
        return Err(Refused::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> Vault {
        Vault::from_spec(&Vault::generate_entry("k1")).unwrap()
    }

    const PATH: &str = "ab/ab00000000000000000000000000000000000000000000000000000000000001.png";

    #[test]
    fn a_signed_url_verifies_until_it_expires() {
        let v = vault();
        let url = sign(
            &v,
            &Url::parse("https://x.example/").unwrap(),
            PATH,
            1000,
            Duration::from_secs(60),
        );
        assert_eq!(url.path(), format!("/media/{PATH}"));
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        let exp: i64 = q["exp"].parse().unwrap();
        assert_eq!(verify(&v, PATH, exp, &q["sig"], 1000), Ok(()));
        assert_eq!(
            verify(&v, PATH, exp, &q["sig"], 1061),
            Err(Refused::Expired)
        );
        assert_eq!(
            verify(&v, PATH, exp + 1, &q["sig"], 1000),
            Err(Refused::BadSignature)
        );
        let other = PATH.replace("01.png", "02.png");
        assert_eq!(
            verify(&v, &other, exp, &q["sig"], 1000),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            verify(&vault(), PATH, exp, &q["sig"], 1000),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            verify(&v, PATH, exp, "zz", 1000),
            Err(Refused::BadSignature)
        );
    }

    #[test]
    fn only_content_addressed_paths_are_served() {
        assert!(valid_path(PATH));
        for bad in [
            "../etc/passwd",
            "ab/../../x.png",
            "ab/cd00.png",
            "AB/AB00000000000000000000000000000000000000000000000000000000000001.png",
            "ab/ab00000000000000000000000000000000000000000000000000000000000001.exe",
            "ab",
        ] {
            assert!(!valid_path(bad), "{bad}");
        }
    }

    #[test]
    fn rotation_keeps_signed_urls_valid() {
        let unrelated = Vault::from_spec(&Vault::generate_entry("k1")).unwrap();
        let spec_old = Vault::generate_entry("old");
        let spec_new = Vault::generate_entry("new");
        let before = Vault::from_spec(&spec_old).unwrap();
        let after = Vault::from_spec(&format!("{spec_new}\n{spec_old}")).unwrap();
        let url = sign(
            &before,
            &Url::parse("https://x.example/").unwrap(),
            PATH,
            0,
            Duration::from_secs(60),
        );
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(
            verify(&after, PATH, q["exp"].parse().unwrap(), &q["sig"], 0),
            Ok(())
        );
        assert!(verify(&unrelated, PATH, q["exp"].parse().unwrap(), &q["sig"], 0).is_err());
    }
}
