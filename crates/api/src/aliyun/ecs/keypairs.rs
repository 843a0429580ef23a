//! ECS key-pair actions: CreateKeyPair, ImportKeyPair, DescribeKeyPairs, DeleteKeyPairs. Key
//! pairs are addressed by name within the account and the region.

use super::{decode_params, json_list, page, regional_key_pairs, tags, Ctx, NS};
use crate::aliyun::ecs::dto::{
    fingerprint, key_pair_out, DeleteKeyPairsRequest, DescribeKeyPairsRequest, NewKeyPairRequest,
};
use crate::aliyun::error::{AliError, EcsRefusal};
use base64::Engine;
use keyplane_core::service::{KeyPairFilter, KeyPairOrder, KeyPairPage, KeyPairQuery, NewKeyPair};
use serde_json::{json, Value};

/// At most this many names in one DeleteKeyPairs.
const MAX_DELETE: usize = 100;
/// DescribeKeyPairs pages hold at most this many.
const MAX_PAGE: i64 = 50;

/// CreateKeyPair: the answer carries the private key (PKCS#8 PEM, as ECS documents it), which
/// is not kept.
pub async fn create(ctx: &Ctx<'_>, params: &[(String, String)]) -> Result<Value, AliError> {
    let req: NewKeyPairRequest = decode_params(params)?;
    let spec = NewKeyPair {
        name: req.key_pair_name,
        region: req.region_id,
        tags: tags(&req.tag)?,
        ..Default::default()
    };
    let created = ctx
        .core
        .create_key_pair(ctx.account, NS, spec, ctx.req)
        .await?;
    let kp = created.key_pair;
    Ok(json!({
        "KeyPairId": kp.id,
        "KeyPairName": kp.name,
        "KeyPairFingerPrint": fingerprint(&kp.fingerprint_md5),
        "PrivateKeyBody": pkcs8_pem(&created.private_key)?,
    }))
}

/// ImportKeyPair.
pub async fn import(ctx: &Ctx<'_>, params: &[(String, String)]) -> Result<Value, AliError> {
    let req: NewKeyPairRequest = decode_params(params)?;
    let public = req
        .public_key_body
        .filter(|p| !p.is_empty())
        .ok_or_else(|| AliError::MissingParameter("PublicKeyBody".into()))?;
    let spec = NewKeyPair {
        name: req.key_pair_name,
        region: req.region_id,
        tags: tags(&req.tag)?,
        ..Default::default()
    };
    let kp = ctx
        .core
        .import_key_pair(ctx.account, NS, spec, &public, ctx.req)
        .await?;
    Ok(json!({
        "KeyPairName": kp.name,
        "KeyPairFingerPrint": fingerprint(&kp.fingerprint_md5),
    }))
}

/// A fingerprint as given (colons and case do not count) in the form stored: lower-case hex.
fn stored_md5(given: &str) -> String {
    given.replace(':', "").to_ascii_lowercase()
}

/// DescribeKeyPairs: `KeyPairName` with `*` wildcards, `KeyPairFingerPrint`, `Tag.N` (all
/// must match), paging, and `PublicKey` only with `IncludePublicKey=true`.
pub async fn describe(ctx: &Ctx<'_>, params: &[(String, String)]) -> Result<Value, AliError> {
    let req: DescribeKeyPairsRequest = decode_params(params)?;
    let (offset, limit, number, size) = page(req.page_number, req.page_size, MAX_PAGE)?;
    tags(&req.tag)?;
    let mut filters = Vec::new();
    if let Some(p) = req.key_pair_name.clone().filter(|p| !p.is_empty()) {
        filters.push(KeyPairFilter::NameLike(p));
    }
    if let Some(f) = req
        .key_pair_finger_print
        .as_deref()
        .filter(|f| !f.is_empty())
    {
        filters.push(KeyPairFilter::FingerprintMd5(vec![stored_md5(f)]));
    }
    // A tag filter without a value matches the key alone.
    for t in &req.tag {
        let key = t.key.clone().unwrap_or_default();
        filters.push(match &t.value {
            Some(v) => KeyPairFilter::Tag {
                key,
                values: vec![v.clone()],
            },
            None => KeyPairFilter::TagKey(vec![key]),
        });
    }
    let include = req.include_public_key.unwrap_or(false);
    // Nothing here belongs to a resource group.
    let found = if req
        .resource_group_id
        .as_deref()
        .is_some_and(|g| !g.is_empty())
    {
        KeyPairPage {
            total: 0,
            items: Vec::new(),
        }
    } else {
        let query = KeyPairQuery {
            region: Some(req.region_id.clone()),
            filters,
            offset,
            limit,
            order: KeyPairOrder::OldestByName,
            ..KeyPairQuery::default()
        };
        ctx.core.describe_key_pairs(ctx.account, NS, &query).await?
    };
    let list: Vec<Value> = found
        .items
        .iter()
        .map(|k| key_pair_out(k, include))
        .collect();
    Ok(json!({
        "TotalCount": found.total,
        "PageNumber": number,
        "PageSize": size,
        "KeyPairs": { "KeyPair": list },
    }))
}

/// DeleteKeyPairs: all or none; a key pair attached to instances cannot be deleted.
pub async fn delete(ctx: &Ctx<'_>, params: &[(String, String)]) -> Result<Value, AliError> {
    let req: DeleteKeyPairsRequest = decode_params(params)?;
    let names = json_list(&req.key_pair_names).map_err(EcsRefusal::KeyPairNames)?;
    if names.is_empty() || names.len() > MAX_DELETE {
        return Err(EcsRefusal::KeyPairNames(format!(
            "it must name 1 to {MAX_DELETE} key pairs, not {}",
            names.len()
        ))
        .into());
    }
    let all = regional_key_pairs(ctx, &req.region_id).await?;
    let mut ids: Vec<String> = Vec::with_capacity(names.len());
    for name in &names {
        let kp = all
            .iter()
            .find(|k| &k.name == name)
            .ok_or_else(|| EcsRefusal::KeyPairsNotFound(name.clone()))?;
        if !ids.contains(&kp.id) {
            ids.push(kp.id.clone());
        }
    }
    ctx.core
        .delete_key_pairs(ctx.account, NS, &ids, ctx.req)
        .await?;
    Ok(json!({}))
}

fn der_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
}

/// Re-wrap a PKCS#1 RSA private key PEM as PKCS#8 (`-----BEGIN PRIVATE KEY-----`): the
/// same key inside a `PrivateKeyInfo` naming rsaEncryption.
pub fn pkcs8_pem(pkcs1_pem: &str) -> Result<String, AliError> {
    let b64: String = pkcs1_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let engine = base64::engine::general_purpose::STANDARD;
    let pkcs1 = engine.decode(b64.trim()).map_err(|e| {
        AliError::Domain(keyplane_core::DomainError::internal(format!(
            "generated key is not PEM: {e}"
        )))
    })?;
    // version 0, AlgorithmIdentifier { rsaEncryption, NULL }
    let mut inner = vec![
        0x02, 0x01, 0x00, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
        0x01, 0x05, 0x00, 0x04,
    ];
    der_length(pkcs1.len(), &mut inner);
    inner.extend(&pkcs1);
    let mut der = vec![0x30];
    der_length(inner.len(), &mut der);
    der.extend(inner);
    let encoded = engine.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in encoded.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_pkcs1_in_pkcs8() {
        let g = keyplane_core::keypair::generate_rsa("k").unwrap();
        let pem = pkcs8_pem(&g.private_pem).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\nMIIE"));
        assert!(pem.ends_with("-----END PRIVATE KEY-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64 || l.starts_with("-----")));
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        let pkcs1_b64: String = g
            .private_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let pkcs1 = base64::engine::general_purpose::STANDARD
            .decode(pkcs1_b64)
            .unwrap();
        assert!(der.ends_with(&pkcs1), "the PKCS#1 key is carried unchanged");
        assert_eq!(&der[..2], &[0x30, 0x82]);
        let total = usize::from(der[2]) << 8 | usize::from(der[3]);
        assert_eq!(total + 4, der.len());
    }

    #[test]
    fn fingerprints_compare_with_or_without_colons() {
        assert_eq!(stored_md5("89:F0:ba"), "89f0ba");
        assert_eq!(stored_md5("89f0BA"), "89f0ba");
        assert_ne!(stored_md5("89:f0:bb"), "89f0ba");
    }
}
