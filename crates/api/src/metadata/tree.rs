//! The metadata tree of one instance, as a pure function of the instance and its keys: the
//! entries under `latest/meta-data/` that both clouds' guests read (Tencent's and Alibaba's
//! names side by side).

use keyplane_core::instance::Instance;

/// The answer at `path` (below `latest/meta-data/`, without a trailing slash), or `None`.
pub(super) fn answer(inst: &Instance, keys: &[String], path: &str) -> Option<String> {
    let leaf = |v: &str| Some(v.to_string());
    let list = |entries: &[&str]| Some(entries.iter().map(|e| format!("{e}\n")).collect());
    match path {
        "" => list(&[
            "hostname",
            "instance-id",
            "instance-name",
            "local-ipv4",
            "placement/",
            "private-ipv4",
            "public-keys/",
            "region-id",
            "zone-id",
        ]),
        "instance-id" => leaf(&inst.id),
        "instance-name" => leaf(&inst.name),
        "hostname" => leaf(&inst.host_name),
        // Tencent calls it local-ipv4, Alibaba private-ipv4.
        "local-ipv4" | "private-ipv4" => leaf(&inst.private_ip),
        "placement" => list(&["region", "zone"]),
        "placement/region" | "region-id" => leaf(&inst.region),
        "placement/zone" | "zone-id" => leaf(&inst.zone),
        "public-keys" => Some(
            inst.effective_key_ids
                .iter()
                .take(keys.len())
                .enumerate()
                .map(|(i, id)| format!("{i}={id}\n"))
                .collect(),
        ),
        _ => {
            let rest = path.strip_prefix("public-keys/")?;
            let (index, field) = rest.split_once('/').unwrap_or((rest, ""));
            let key = keys.get(index.parse::<usize>().ok()?)?;
            match field {
                "" => list(&["openssh-key"]),
                "openssh-key" => Some(format!("{key}\n")),
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyplane_core::instance::{HostKind, InstanceState, OsType};
    use keyplane_core::keypair::Namespace;

    fn inst() -> Instance {
        Instance {
            id: "ins-abc".into(),
            account_id: "acc".into(),
            namespace: Namespace::Cvm,
            region: "ap-guangzhou".into(),
            zone: "ap-guangzhou-3".into(),
            name: "web".into(),
            host_name: "web-1".into(),
            image_id: "img-kpdeb12x".into(),
            os: OsType::Linux,
            os_name: "Debian".into(),
            instance_type: "S5.SMALL1".into(),
            state: InstanceState::Running,
            host: HostKind::Sandbox,
            private_ip: "127.1.0.7".into(),
            ssh_port: 22,
            password_hash: None,
            key_ids: vec!["skey-1".into()],
            effective_key_ids: vec!["skey-1".into()],
            desired_generation: 1,
            applied_generation: 1,
            latest_operation: None,
            latest_operation_state: None,
            latest_operation_request_id: None,
            latest_operation_error: None,
            created_at: 0,
        }
    }

    #[test]
    fn answers_about_the_instance() {
        let i = inst();
        let keys = vec!["ssh-ed25519 AAAA me".to_string()];
        assert_eq!(answer(&i, &keys, "instance-id").unwrap(), "ins-abc");
        assert_eq!(answer(&i, &keys, "local-ipv4").unwrap(), "127.1.0.7");
        assert_eq!(answer(&i, &keys, "private-ipv4").unwrap(), "127.1.0.7");
        assert_eq!(
            answer(&i, &keys, "placement/zone").unwrap(),
            "ap-guangzhou-3"
        );
        assert_eq!(answer(&i, &keys, "public-keys").unwrap(), "0=skey-1\n");
        assert_eq!(
            answer(&i, &keys, "public-keys/0/openssh-key").unwrap(),
            "ssh-ed25519 AAAA me\n"
        );
        assert!(answer(&i, &keys, "public-keys/1/openssh-key").is_none());
        assert!(answer(&i, &keys, "nope").is_none());
        assert!(answer(&i, &keys, "").unwrap().contains("instance-id\n"));
    }
}
