//! The pushed-down describe reads the dialects' filters become: instances by region, ids and
//! every filter, in each order, paged, with the total; key pairs by wildcard name and MD5
//! fingerprint in name order. Each answer is checked against the filter's own meaning
//! ([`InstanceQuery::selects`], [`KeyPairFilter::matches`]) over the same rows.

use crate::suite::instance;
use keyplane_core::account::Account;
use keyplane_core::instance::{Instance, InstanceState};
use keyplane_core::keypair::{KeyPair, Namespace};
use keyplane_core::query::{instance_uuid, InstanceFilter, InstanceOrder, InstanceQuery};
use keyplane_core::service::{KeyPairFilter, KeyPairOrder, KeyPairQuery};
use keyplane_core::store::Store;

/// Run the describe-query scenarios on `store`; they leave no instance behind.
pub(crate) async fn run(store: &dyn Store) {
    let a = Account::generate("suite-dq-a", false, 80);
    let b = Account::generate("suite-dq-b", false, 81);
    store.insert_account(&a).await.unwrap();
    store.insert_account(&b).await.unwrap();
    let keys = key_pairs(store, &a).await;
    let mut mine = Vec::new();
    for n in 0..9u32 {
        let k0 = keys[(n % 3) as usize].id.as_str();
        let bound: Vec<&str> = match n % 4 {
            0 => vec![],
            1 => vec![k0],
            _ => vec![k0, keys[3].id.as_str()],
        };
        // Creation times with ties, so that the tie order shows.
        let mut i = instance(&a, 1200 + n, &bound, 700 + i64::from(n / 3));
        i.region = if n == 8 {
            "ap-shanghai"
        } else {
            "ap-guangzhou"
        }
        .into();
        i.zone = format!("ap-guangzhou-{}", n % 2 + 1);
        i.name = match n {
            4 => String::new(),
            n => format!("web-{n}{}", if n % 2 == 0 { "-x" } else { "" }),
        };
        i.state = [InstanceState::Running, InstanceState::Stopped][(n % 2) as usize];
        i.instance_type = format!("S5.{}", if n < 5 { "SMALL2" } else { "LARGE8" });
        i.image_id = format!("img-{}", n % 3);
        mine.push(i);
    }
    let theirs = instance(&b, 1220, &[], 700);
    let mut other_ns = instance(&a, 1221, &[], 700);
    other_ns.namespace = Namespace::Lighthouse;
    let mut all = mine.clone();
    all.extend([theirs.clone(), other_ns.clone()]);
    store.insert_instances(&all, &[], None).await.unwrap();
    mine.sort_by(|x, y| (x.created_at, &x.id).cmp(&(y.created_at, &y.id)));

    let q = |filters: Vec<InstanceFilter>| InstanceQuery {
        region: Some("ap-guangzhou".into()),
        filters,
        limit: 100,
        ..InstanceQuery::default()
    };
    let uuid = instance_uuid(&mine[2].id);
    let cases = vec![
        q(vec![]),
        q(vec![InstanceFilter::Id(vec![
            mine[1].id.clone(),
            theirs.id.clone(),
        ])]),
        q(vec![InstanceFilter::Zone(vec!["ap-guangzhou-2".into()])]),
        q(vec![InstanceFilter::Name(vec![
            "web-3".into(),
            "web-2-x".into(),
        ])]),
        q(vec![InstanceFilter::NameContains(vec![
            "-x".into(),
            "b-1".into(),
        ])]),
        q(vec![InstanceFilter::NameContains(vec![String::new()])]),
        q(vec![InstanceFilter::DisplayNameLike("web-*-x".into())]),
        q(vec![InstanceFilter::DisplayNameLike(mine[4].id.clone())]),
        q(vec![InstanceFilter::DisplayNameLike("ins-*".into())]),
        q(vec![InstanceFilter::DisplayNameLike("we?-1".into())]),
        q(vec![InstanceFilter::State(vec![InstanceState::Stopped])]),
        q(vec![InstanceFilter::State(vec![])]),
        q(vec![InstanceFilter::PrivateIp(vec![mine[5]
            .private_ip
            .clone()])]),
        q(vec![InstanceFilter::InstanceType(vec!["S5.LARGE8".into()])]),
        q(vec![InstanceFilter::ImageId(vec![
            "img-1".into(),
            "img-2".into(),
        ])]),
        q(vec![InstanceFilter::Uuid(vec![uuid, "nope".into()])]),
        q(vec![InstanceFilter::CreatedFrom(701)]),
        q(vec![InstanceFilter::CreatedUntil(701)]),
        q(vec![InstanceFilter::FirstKey(keys[1].id.clone())]),
        q(vec![InstanceFilter::FirstKey(keys[3].id.clone())]),
        q(vec![InstanceFilter::Nothing]),
        q(vec![
            InstanceFilter::State(vec![InstanceState::Running]),
            InstanceFilter::Zone(vec!["ap-guangzhou-1".into()]),
            InstanceFilter::CreatedFrom(701),
        ]),
        InstanceQuery {
            region: None,
            ..q(vec![])
        },
        InstanceQuery {
            ids: Some(vec![
                mine[7].id.clone(),
                mine[8].id.clone(),
                other_ns.id.clone(),
            ]),
            ..q(vec![])
        },
        InstanceQuery {
            ids: Some(vec![]),
            ..q(vec![])
        },
    ];
    for query in &cases {
        let want: Vec<&Instance> = mine.iter().filter(|i| query.selects(i)).collect();
        let got = store
            .query_instances(&a.id, Namespace::Cvm, query)
            .await
            .unwrap();
        assert_eq!(got.total, want.len(), "{query:?}");
        let got_ids: Vec<&str> = got.items.iter().map(|i| i.id.as_str()).collect();
        let want_ids: Vec<&str> = want.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(got_ids, want_ids, "{query:?}");
        for (g, w) in got.items.iter().zip(&want) {
            assert_eq!(g.key_ids, w.key_ids, "bound keys in binding order");
        }
    }
    orders_and_pages(store, &a, &mine).await;
    key_pair_queries(store, &a, &keys).await;
    for i in &all {
        store.delete_instance(&i.id).await.unwrap();
    }
    kept_totals(store, &a, &b).await;
}

/// The total of an unfiltered page (a count the database keeps) follows inserts and
/// deletes, per account and namespace, as a count of the rows does.
async fn kept_totals(store: &dyn Store, a: &Account, b: &Account) {
    // Past the first row, so the total cannot come from the page itself.
    async fn total(store: &dyn Store, acc: &Account, ns: Namespace, filtered: bool) -> usize {
        let q = KeyPairQuery {
            filters: match filtered {
                true => vec![KeyPairFilter::NameLike("*".into())],
                false => Vec::new(),
            },
            offset: 1,
            limit: 1,
            ..KeyPairQuery::default()
        };
        store.query_key_pairs(&acc.id, ns, &q).await.unwrap().total
    }
    async fn kept(store: &dyn Store, acc: &Account, ns: Namespace) -> usize {
        let kept = total(store, acc, ns, false).await;
        assert_eq!(kept, total(store, acc, ns, true).await, "{ns:?}");
        kept
    }
    let check = |acc, ns| kept(store, acc, ns);
    let before = check(a, Namespace::Cvm).await;
    assert_eq!(check(b, Namespace::Cvm).await, 0);
    assert_eq!(check(b, Namespace::Lighthouse).await, 0);
    let mut added = Vec::new();
    for n in 0..3 {
        let mut k = crate::suite::key(b, Namespace::Lighthouse, &format!("kept{n}"), 800 + n);
        k.fingerprint_sha256 = format!("SHA256:kept-{n}");
        store.insert_key_pair(&k, 100, None).await.unwrap();
        added.push(k.id);
    }
    assert_eq!(check(b, Namespace::Lighthouse).await, 3);
    assert_eq!(check(b, Namespace::Cvm).await, 0);
    assert_eq!(check(a, Namespace::Cvm).await, before);
    store
        .delete_key_pairs(&b.id, Namespace::Lighthouse, &added[..2], None)
        .await
        .unwrap();
    assert_eq!(check(b, Namespace::Lighthouse).await, 1);
    // A refused insert (the name is taken) counts nothing.
    let mut again = crate::suite::key(b, Namespace::Lighthouse, "kept2", 900);
    again.fingerprint_sha256 = "SHA256:kept-again".into();
    assert!(store.insert_key_pair(&again, 100, None).await.is_err());
    assert_eq!(check(b, Namespace::Lighthouse).await, 1);
    store
        .delete_key_pairs(&b.id, Namespace::Lighthouse, &added[2..], None)
        .await
        .unwrap();
    assert_eq!(check(b, Namespace::Lighthouse).await, 0);
}

/// Four key pairs of `a`, plus ECS ones in two regions with names that tie in time.
async fn key_pairs(store: &dyn Store, a: &Account) -> Vec<KeyPair> {
    let mut keys = Vec::new();
    for n in 0..4i64 {
        let mut k = crate::suite::key(a, Namespace::Cvm, &format!("dq{n}"), 650 + n);
        k.fingerprint_md5 = format!("{n:032x}");
        store.insert_key_pair(&k, 100, None).await.unwrap();
        keys.push(k);
    }
    keys
}

/// Every order on the same rows, and pages of each with the total before paging.
async fn orders_and_pages(store: &dyn Store, a: &Account, mine: &[Instance]) {
    let in_region: Vec<&Instance> = mine.iter().filter(|i| i.region == "ap-guangzhou").collect();
    let mut newest = in_region.clone();
    newest.sort_by(|x, y| y.created_at.cmp(&x.created_at).then(x.id.cmp(&y.id)));
    let mut reversed = in_region.clone();
    reversed.reverse();
    for (order, want) in [
        (InstanceOrder::Oldest, &in_region),
        (InstanceOrder::Newest, &newest),
        (InstanceOrder::NewestReversed, &reversed),
    ] {
        for (offset, limit) in [(0, 100), (0, 3), (2, 3), (6, 5), (20, 5)] {
            let query = InstanceQuery {
                region: Some("ap-guangzhou".into()),
                order,
                offset,
                limit,
                ..InstanceQuery::default()
            };
            let got = store
                .query_instances(&a.id, Namespace::Cvm, &query)
                .await
                .unwrap();
            assert_eq!(got.total, want.len(), "{query:?}");
            let got: Vec<&str> = got.items.iter().map(|i| i.id.as_str()).collect();
            let want: Vec<&str> = want
                .iter()
                .skip(offset)
                .take(limit)
                .map(|i| i.id.as_str())
                .collect();
            assert_eq!(got, want, "{query:?}");
        }
    }
}

/// Key pairs by wildcard name and MD5 fingerprint, and in name order within a time.
async fn key_pair_queries(store: &dyn Store, a: &Account, keys: &[KeyPair]) {
    let run = |ns: Namespace, q: KeyPairQuery| async move {
        store.query_key_pairs(&a.id, ns, &q).await.unwrap()
    };
    for f in [
        KeyPairFilter::NameLike("dq*".into()),
        KeyPairFilter::NameLike("*2".into()),
        KeyPairFilter::NameLike("dq1".into()),
        KeyPairFilter::NameLike("DQ*".into()),
        KeyPairFilter::NameLike("d_*".into()),
        KeyPairFilter::NameLike("d%".into()),
        KeyPairFilter::FingerprintMd5(vec![keys[2].fingerprint_md5.clone(), "ff".into()]),
    ] {
        let q = KeyPairQuery {
            filters: vec![f.clone()],
            limit: 100,
            ..KeyPairQuery::default()
        };
        let got: Vec<String> = run(Namespace::Cvm, q)
            .await
            .items
            .into_iter()
            .map(|k| k.id)
            .collect();
        let want: Vec<String> = keys
            .iter()
            .filter(|k| f.matches(k))
            .map(|k| k.id.clone())
            .collect();
        assert_eq!(got, want, "{f:?}");
    }
    // Names tie in time: by name (bytes, not the database's collation), then paged.
    let names = ["b-key", "B-key", "a_key", "a-key", "Zed", "z"];
    for (n, name) in names.iter().enumerate() {
        let mut k = crate::suite::key(a, Namespace::Ecs, name, 660);
        k.region = "cn-hangzhou".into();
        k.fingerprint_sha256 = format!("SHA256:dq-ecs-{n}");
        store.insert_key_pair(&k, 100, None).await.unwrap();
    }
    let mut sorted: Vec<&str> = names.to_vec();
    sorted.sort();
    for (offset, limit) in [(0, 100), (1, 2), (4, 10)] {
        let q = KeyPairQuery {
            region: Some("cn-hangzhou".into()),
            order: KeyPairOrder::OldestByName,
            offset,
            limit,
            ..KeyPairQuery::default()
        };
        let page = run(Namespace::Ecs, q).await;
        assert_eq!(page.total, names.len());
        let got: Vec<String> = page.items.into_iter().map(|k| k.name).collect();
        let want: Vec<&str> = sorted.iter().skip(offset).take(limit).copied().collect();
        assert_eq!(got, want);
    }
}
