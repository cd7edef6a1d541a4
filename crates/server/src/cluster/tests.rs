//! Replicas over one in-memory object store: the index's rules without a
//! network (the end-to-end suite runs the same against SeaweedFS).

use super::*;
use faas_proto::Lang;
use object_store::memory::InMemory;
use sha2::{Digest, Sha256};
use std::collections::HashSet;

fn key() -> ClusterKey {
    ClusterKey::from_bytes(b"the cluster key of these tests")
}

struct Replica {
    cluster: Cluster,
    store: FunctionStore,
    secrets: crate::secrets::SecretStore,
    _dir: tempfile::TempDir,
}

async fn replicas(n: usize) -> Vec<Replica> {
    let shared: Arc<dyn object_store::ObjectStore> = Arc::new(InMemory::new());
    let mut all = Vec::new();
    for i in 0..n {
        let objects = Objects::new(shared.clone(), "t", "memory".into(), key());
        let config = ClusterConfig {
            url: "s3://memory".into(),
            endpoint: None,
            credentials: None,
            replica: format!("r{i}"),
            key: Some(key()),
            peers: Peers::default(),
            poll: Duration::from_millis(500),
            max_blob_bytes: 0,
        };
        let dir = tempfile::tempdir().unwrap();
        all.push(Replica {
            cluster: Cluster::with_objects(objects, config).await.unwrap(),
            store: FunctionStore::open(&dir.path().join("functions")).unwrap(),
            secrets: crate::secrets::SecretStore::open_with_key(
                &dir.path().join("secrets"),
                [7; 32],
                "test key",
            )
            .unwrap(),
            _dir: dir,
        });
    }
    all
}

/// Deploys (or updates) `name` with a Python source on `replica`.
async fn deploy(
    replica: &Replica,
    name: &str,
    update: bool,
    code: &str,
) -> Result<Arc<FunctionMeta>, ClusterError> {
    let mut r = if update {
        replica.store.reserve_update(name)?
    } else {
        replica.store.reserve(name)?
    };
    replica.cluster.claim(&mut r).await?;
    r.create_staging()?;
    std::fs::write(r.staging.join("code.py"), code).unwrap();
    let meta = FunctionMeta {
        id: r.id.clone(),
        name: name.into(),
        lang: Lang::Python,
        created: 1,
        sha256: objects::hex(&Sha256::digest(code.as_bytes())),
        wasm: true,
        settings: Default::default(),
        version: 0,
    };
    let (meta, _) = replica
        .cluster
        .publish(&replica.store, r, meta, update, 5)
        .await?;
    Ok(meta)
}

async fn sync(replica: &Replica) -> Synced {
    replica
        .cluster
        .sync(&replica.store, &replica.secrets, Instant::now())
        .await
        .unwrap()
}

#[tokio::test]
async fn one_new_name_deployed_on_three_replicas_at_once_gives_one_winner() {
    let all = replicas(3).await;
    let results =
        futures_util::future::join_all(all.iter().map(|r| deploy(r, "race", false, "print(1)")))
            .await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    let taken = results
        .iter()
        .filter(|r| matches!(r, Err(ClusterError::Store(StoreError::NameTaken(_)))))
        .count();
    assert_eq!((won, taken), (1, 2), "{results:?}");
    // The losers kept nothing, and every replica ends with the winner.
    for replica in &all {
        sync(replica).await;
        assert_eq!(replica.store.versions("race").len(), 1);
    }
}

#[tokio::test]
async fn racing_updates_all_become_distinct_versions_everyone_agrees_on() {
    let all = replicas(3).await;
    deploy(&all[0], "f", false, "print(0)").await.unwrap();
    for replica in &all {
        sync(replica).await;
    }
    let updates = futures_util::future::join_all(
        all.iter()
            .enumerate()
            .map(|(i, r)| async move { deploy(r, "f", true, &format!("print({})", i + 1)).await }),
    )
    .await;
    let ids: HashSet<String> = updates
        .iter()
        .map(|u| u.as_ref().unwrap().id.clone())
        .collect();
    assert_eq!(ids.len(), 3, "ids must be distinct: {ids:?}");
    let versions: HashSet<u64> = updates
        .iter()
        .map(|u| u.as_ref().unwrap().version)
        .collect();
    assert_eq!(versions.len(), 3);
    for replica in &all {
        sync(replica).await;
    }
    let latest: Vec<String> = all
        .iter()
        .map(|r| r.store.resolve("f").unwrap().id.clone())
        .collect();
    assert!(latest.iter().all(|l| *l == latest[0]), "{latest:?}");
    assert_eq!(all[1].store.versions("f").len(), 4);
}

#[tokio::test]
async fn a_delete_reaches_every_replica_and_its_id_is_never_reused() {
    let all = replicas(2).await;
    let first = deploy(&all[0], "gone", false, "print(1)").await.unwrap();
    let synced = sync(&all[1]).await;
    assert_eq!(synced.added.len(), 1);
    assert_eq!(
        all[1]
            .store
            .source(&all[1].store.resolve("gone").unwrap())
            .unwrap(),
        b"print(1)"
    );
    all[1].cluster.delete(&all[1].store, "gone").await.unwrap();
    let synced = sync(&all[0]).await;
    assert_eq!(synced.removed.len(), 1);
    assert!(all[0].store.resolve("gone").is_none());
    // Deployed again within the same second: a new id.
    let again = deploy(&all[0], "gone", false, "print(2)").await.unwrap();
    assert_ne!(again.id, first.id);
}

#[tokio::test]
async fn a_tampered_source_is_refused_and_never_served() {
    let all = replicas(2).await;
    let meta = deploy(&all[0], "t", false, "print('good')").await.unwrap();
    let path = object_store::path::Path::from(format!("t/v1/fn/{}/code.py", meta.id));
    let shared = all[1].cluster.objects.clone();
    shared.overwrite_for_test(&path, b"print('evil')").await;
    sync(&all[1]).await;
    assert!(all[1].store.resolve("t").is_none());
}

#[tokio::test]
async fn the_latest_version_cannot_be_deleted_alone() {
    let all = replicas(1).await;
    let first = deploy(&all[0], "v", false, "print(1)").await.unwrap();
    let second = deploy(&all[0], "v", true, "print(2)").await.unwrap();
    let err = all[0]
        .cluster
        .delete(&all[0].store, &second.id)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClusterError::Store(StoreError::IsLatest(_))),
        "{err}"
    );
    all[0]
        .cluster
        .delete(&all[0].store, &first.id)
        .await
        .unwrap();
    assert_eq!(all[0].store.versions("v").len(), 1);
}

#[test]
fn s3_urls_parse() {
    assert_eq!(parse_s3_url("s3://faas").unwrap(), ("faas", ""));
    assert_eq!(
        parse_s3_url("s3://faas/team/a/").unwrap(),
        ("faas", "team/a")
    );
    assert!(parse_s3_url("http://faas").is_err());
    assert!(parse_s3_url("s3://Bad_Bucket").is_err());
}
