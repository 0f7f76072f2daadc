//! ACLs and authentication through the real binary.
//!
//! Expectations were checked against Apache ZooKeeper 3.8 (`OXKEEPER_TEST_EXTERNAL`; the
//! super-digest test with `OXKEEPER_TEST_EXTERNAL_SPECIAL` pointing at a ZooKeeper started with
//! the same superDigest).

mod common;

use std::time::Duration;

use common::{digest_id, TestServer};
use zookeeper_client::{
    Acl, Acls, AuthId, Client, CreateMode, CreateOptions, Error, Permission, SessionState,
};

const PERSISTENT: CreateOptions<'static> = CreateMode::Persistent.with_acls(Acls::anyone_all());

fn digest(user_password: &str, perm: Permission) -> Acl {
    Acl::new(perm, AuthId::new("digest", &digest_id(user_password)))
}

fn sorted(mut acls: Vec<Acl>) -> Vec<Acl> {
    acls.sort_by(|a, b| {
        (a.scheme(), a.id(), a.permission().to_string()).cmp(&(
            b.scheme(),
            b.id(),
            b.permission().to_string(),
        ))
    });
    acls
}

async fn authed(server: &TestServer, user_password: &str) -> Client {
    let zk = common::client(server).await;
    zk.auth("digest", user_password.as_bytes())
        .await
        .expect("digest auth");
    zk
}

#[tokio::test]
async fn digest_acl_admits_only_that_identity() {
    let server = TestServer::start();
    let owner = authed(&server, "user:pass").await;
    let p = server.path("acl_digest");
    let acl = [digest("user:pass", Permission::ALL)];
    owner
        .create(
            &p,
            b"secret",
            &CreateMode::Persistent.with_acls(Acls::new(&acl)),
        )
        .await
        .expect("create");
    owner
        .create(&format!("{p}/kid"), b"", &PERSISTENT)
        .await
        .expect("owner creates a child");

    let (data, _) = owner.get_data(&p).await.expect("owner reads");
    assert_eq!(data, b"secret");
    let (got, _) = owner.get_acl(&p).await.expect("owner getACL");
    assert_eq!(got, acl.to_vec());

    let anon = common::client(&server).await;
    let other = authed(&server, "other:secret").await;
    let wrong = authed(&server, "user:wrong").await;
    for (who, zk) in [
        ("anonymous", &anon),
        ("other", &other),
        ("wrong password", &wrong),
    ] {
        assert_eq!(zk.get_data(&p).await, Err(Error::NoAuth), "{who} getData");
        assert_eq!(
            zk.set_data(&p, b"x", None).await,
            Err(Error::NoAuth),
            "{who} setData"
        );
        assert_eq!(
            zk.list_children(&p).await,
            Err(Error::NoAuth),
            "{who} getChildren"
        );
        assert_eq!(
            zk.get_children(&p).await,
            Err(Error::NoAuth),
            "{who} getChildren2"
        );
        assert_eq!(
            zk.create(&format!("{p}/c"), b"", &PERSISTENT).await,
            Err(Error::NoAuth),
            "{who} create child"
        );
        assert_eq!(
            zk.delete(&format!("{p}/kid"), None).await,
            Err(Error::NoAuth),
            "{who} delete child"
        );
        assert_eq!(
            zk.set_acl(&p, Acls::anyone_all().to_vec().as_slice(), None)
                .await,
            Err(Error::NoAuth),
            "{who} setACL"
        );
        assert_eq!(zk.get_acl(&p).await, Err(Error::NoAuth), "{who} getACL");
        assert_eq!(
            zk.get_and_watch_data(&p).await.err(),
            Some(Error::NoAuth),
            "{who} getData with watch"
        );
        // Since ZooKeeper 3.8.4 / 3.9.2 (ZOOKEEPER-2590) exists needs READ too; oxkeeper
        // reports 3.9.3. Older servers (Debian's 3.8.0) answer with the Stat.
        assert_eq!(
            zk.check_stat(&p).await.err(),
            Some(Error::NoAuth),
            "{who} exists"
        );
        let mut r = zk.new_multi_reader();
        r.add_get_data(&p).expect("op");
        let results = r.commit().await.expect("multiRead");
        assert!(
            matches!(
                &results[0],
                zookeeper_client::MultiReadResult::Error { err: Error::NoAuth }
            ),
            "{who} multiRead: {:?}",
            results[0]
        );
    }

    // The same credentials on another session work.
    let again = authed(&server, "user:pass").await;
    again
        .set_data(&p, b"changed", None)
        .await
        .expect("same identity writes");
    // A session may hold several identities.
    other
        .auth("digest", b"user:pass")
        .await
        .expect("second identity");
    other.get_data(&p).await.expect("with the second identity");

    // Deleting a node needs DELETE on its parent, not on the node: the root allows it.
    owner
        .delete(&format!("{p}/kid"), None)
        .await
        .expect("owner deletes the child");
    anon.delete(&p, None)
        .await
        .expect("anyone may delete it: the parent's ACL decides");
}

#[tokio::test]
async fn world_read_only() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let p = server.path("acl_world_read");
    zk.create(
        &p,
        b"ro",
        &CreateMode::Persistent.with_acls(Acls::anyone_read()),
    )
    .await
    .expect("create");
    let (data, _) = zk.get_data(&p).await.expect("read");
    assert_eq!(data, b"ro");
    assert!(zk.list_children(&p).await.expect("ls").is_empty());
    let (acl, _) = zk.get_acl(&p).await.expect("getACL needs only READ");
    assert_eq!(acl, vec![Acl::new(Permission::READ, AuthId::anyone())]);
    assert_eq!(zk.set_data(&p, b"x", None).await, Err(Error::NoAuth));
    assert_eq!(
        zk.create(&format!("{p}/c"), b"", &PERSISTENT).await,
        Err(Error::NoAuth)
    );
    assert_eq!(
        zk.set_acl(&p, &[Acl::new(Permission::ALL, AuthId::anyone())], None)
            .await,
        Err(Error::NoAuth)
    );
    let mut w = zk.new_multi_writer();
    w.add_set_data(&p, b"x", None).expect("op");
    assert_eq!(
        w.commit().await,
        Err(zookeeper_client::MultiWriteError::OperationFailed {
            index: 0,
            source: Error::NoAuth
        })
    );
    // The parent (root) allows the delete.
    zk.delete(&p, None).await.expect("delete");
}

#[tokio::test]
async fn delete_and_create_check_the_parent() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let p = server.path("acl_parent_perms");
    let acl = [Acl::new(
        Permission::READ | Permission::CREATE,
        AuthId::anyone(),
    )];
    zk.create(&p, b"", &CreateMode::Persistent.with_acls(Acls::new(&acl)))
        .await
        .expect("create");
    zk.create(&format!("{p}/c"), b"", &PERSISTENT)
        .await
        .expect("CREATE allows a child");
    assert_eq!(
        zk.delete(&format!("{p}/c"), None).await,
        Err(Error::NoAuth),
        "no DELETE on the parent"
    );
    let acl = [Acl::new(
        Permission::READ | Permission::DELETE,
        AuthId::anyone(),
    )];
    let zk2 = common::client(&server).await;
    let q = server.path("acl_parent_perms_q");
    zk2.create(&q, b"", &PERSISTENT).await.expect("q");
    zk2.create(
        &format!("{q}/c"),
        b"",
        &CreateMode::Persistent.with_acls(Acls::anyone_read()),
    )
    .await
    .expect("q/c");
    zk2.set_acl(&q, &acl, None).await.expect("setACL q");
    assert_eq!(
        zk2.create(&format!("{q}/d"), b"", &PERSISTENT).await,
        Err(Error::NoAuth),
        "no CREATE"
    );
    zk2.delete(&format!("{q}/c"), None)
        .await
        .expect("DELETE on the parent suffices, whatever the child's ACL");
}

#[tokio::test]
async fn auth_scheme_takes_the_creators_identities() {
    let server = TestServer::start();
    let anon = common::client(&server).await;
    let p = server.path("acl_auth_scheme");
    let creator = CreateMode::Persistent.with_acls(Acls::creator_all());
    assert_eq!(
        anon.create(&p, b"", &creator).await,
        Err(Error::InvalidAcl),
        "auth scheme without any identity"
    );
    assert_eq!(anon.check_stat(&p).await.expect("exists"), None);

    let zk = authed(&server, "user:pass").await;
    zk.create(&p, b"", &creator)
        .await
        .expect("create with auth scheme");
    let (acl, _) = zk.get_acl(&p).await.expect("getACL");
    assert_eq!(
        acl,
        vec![digest("user:pass", Permission::ALL)],
        "auth:: becomes the creator's digest id"
    );
    assert_eq!(anon.get_data(&p).await, Err(Error::NoAuth));

    zk.auth("digest", b"other:secret")
        .await
        .expect("second identity");
    let q = format!("{p}/two");
    zk.create(&q, b"", &creator)
        .await
        .expect("create with two identities");
    let (acl, _) = zk.get_acl(&q).await.expect("getACL");
    assert_eq!(
        sorted(acl),
        sorted(vec![
            digest("other:secret", Permission::ALL),
            digest("user:pass", Permission::ALL)
        ]),
        "one entry per authenticated identity"
    );
    let o = authed(&server, "other:secret").await;
    o.get_data(&q).await.expect("either identity may read");

    // setACL with the auth scheme too.
    let r = server.path("acl_auth_scheme_set");
    o.create(&r, b"", &PERSISTENT).await.expect("create");
    o.set_acl(
        &r,
        &[Acl::new(
            Permission::READ | Permission::ADMIN,
            AuthId::authed(),
        )],
        None,
    )
    .await
    .expect("setACL auth");
    let (acl, _) = o.get_acl(&r).await.expect("getACL");
    assert_eq!(
        acl,
        vec![digest("other:secret", Permission::READ | Permission::ADMIN)]
    );
    // The new list is validated before the ADMIN check: auth:: without identities is invalid.
    assert_eq!(
        anon.set_acl(
            &format!("{p}/two"),
            &[Acl::new(Permission::ALL, AuthId::authed())],
            None
        )
        .await,
        Err(Error::InvalidAcl)
    );
    assert_eq!(
        anon.set_acl(
            &format!("{p}/two"),
            &[Acl::new(Permission::ALL, AuthId::anyone())],
            None
        )
        .await,
        Err(Error::NoAuth)
    );
}

#[tokio::test]
async fn invalid_acls_are_rejected() {
    let server = TestServer::start();
    let zk = authed(&server, "user:pass").await;
    let p = server.path("acl_invalid");
    let cases: Vec<(&str, Acl)> = vec![
        (
            "unknown scheme",
            Acl::new(Permission::ALL, AuthId::new("foo", "bar")),
        ),
        (
            "digest without a colon",
            Acl::new(Permission::ALL, AuthId::new("digest", "nocolon")),
        ),
        (
            "ip that is no address",
            Acl::new(Permission::ALL, AuthId::new("ip", "not.an.ip")),
        ),
        (
            "ip with a bad mask",
            Acl::new(Permission::ALL, AuthId::new("ip", "127.0.0.1/33")),
        ),
        (
            "world other than anyone",
            Acl::new(Permission::ALL, AuthId::new("world", "someone")),
        ),
        (
            "super scheme",
            Acl::new(Permission::ALL, AuthId::new("super", "x")),
        ),
    ];
    for (what, acl) in &cases {
        let acls = [acl.clone()];
        assert_eq!(
            zk.create(&p, b"", &CreateMode::Persistent.with_acls(Acls::new(&acls)))
                .await,
            Err(Error::InvalidAcl),
            "create with {what}"
        );
    }
    // An invalid entry spoils a list with valid ones.
    let mixed = [
        Acl::new(Permission::ALL, AuthId::anyone()),
        Acl::new(Permission::ALL, AuthId::new("foo", "bar")),
    ];
    assert_eq!(
        zk.create(
            &p,
            b"",
            &CreateMode::Persistent.with_acls(Acls::new(&mixed))
        )
        .await,
        Err(Error::InvalidAcl)
    );
    // The list is validated before the parent is looked up.
    assert_eq!(
        zk.create(
            &format!("{p}/no/parent"),
            b"",
            &CreateMode::Persistent.with_acls(Acls::new(&mixed))
        )
        .await,
        Err(Error::InvalidAcl)
    );
    // The client refuses an empty list itself.
    assert_eq!(
        zk.create(&p, b"", &CreateMode::Persistent.with_acls(Acls::new(&[])))
            .await,
        Err(Error::InvalidAcl)
    );
    assert_eq!(zk.check_stat(&p).await.expect("exists"), None);

    zk.create(&p, b"", &PERSISTENT).await.expect("create");
    for (what, acl) in &cases {
        assert_eq!(
            zk.set_acl(&p, std::slice::from_ref(acl), None).await,
            Err(Error::InvalidAcl),
            "setACL with {what}"
        );
    }
    assert_eq!(
        zk.set_acl(&p, &[], None).await,
        Err(Error::InvalidAcl),
        "setACL with an empty list"
    );
    let (acl, stat) = zk.get_acl(&p).await.expect("getACL");
    assert_eq!(acl, vec![Acl::new(Permission::ALL, AuthId::anyone())]);
    assert_eq!(stat.aversion, 0);

    // Valid forms.
    for (what, acl) in [
        (
            "ip",
            Acl::new(Permission::ALL, AuthId::new("ip", "127.0.0.1")),
        ),
        (
            "ip with mask",
            Acl::new(Permission::ALL, AuthId::new("ip", "10.0.0.0/8")),
        ),
        ("digest", digest("other:secret", Permission::READ)),
    ] {
        let acls = [acl, Acl::new(Permission::ALL, AuthId::anyone())];
        zk.set_acl(&p, &acls, None)
            .await
            .unwrap_or_else(|e| panic!("setACL with {what}: {e}"));
        let (got, _) = zk.get_acl(&p).await.expect("getACL");
        assert_eq!(got, acls.to_vec(), "{what} kept as given");
    }
}

#[tokio::test]
async fn ip_scheme() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let p = server.path("acl_ip");
    let local = [Acl::new(
        Permission::READ | Permission::WRITE,
        AuthId::new("ip", "127.0.0.1"),
    )];
    zk.create(
        &p,
        b"v",
        &CreateMode::Persistent.with_acls(Acls::new(&local)),
    )
    .await
    .expect("create");
    zk.get_data(&p).await.expect("127.0.0.1 reads");
    zk.set_data(&p, b"w", None).await.expect("127.0.0.1 writes");
    assert_eq!(
        zk.create(&format!("{p}/c"), b"", &PERSISTENT).await,
        Err(Error::NoAuth)
    );

    let q = server.path("acl_ip_elsewhere");
    let elsewhere = [Acl::new(Permission::ALL, AuthId::new("ip", "10.1.2.3"))];
    zk.create(
        &q,
        b"",
        &CreateMode::Persistent.with_acls(Acls::new(&elsewhere)),
    )
    .await
    .expect("create");
    assert_eq!(zk.get_data(&q).await, Err(Error::NoAuth));

    let r = server.path("acl_ip_mask");
    let mask = [Acl::new(Permission::READ, AuthId::new("ip", "127.0.0.0/8"))];
    zk.create(&r, b"", &CreateMode::Persistent.with_acls(Acls::new(&mask)))
        .await
        .expect("create");
    zk.get_data(&r).await.expect("inside 127.0.0.0/8");
    assert_eq!(zk.set_data(&r, b"x", None).await, Err(Error::NoAuth));

    let s = server.path("acl_ip_mask_out");
    let mask = [Acl::new(Permission::READ, AuthId::new("ip", "126.0.0.0/8"))];
    zk.create(&s, b"", &CreateMode::Persistent.with_acls(Acls::new(&mask)))
        .await
        .expect("create");
    assert_eq!(zk.get_data(&s).await, Err(Error::NoAuth));
}

#[tokio::test]
async fn super_digest_can_do_everything() {
    let server = TestServer::start_special(&[
        "DigestAuthenticationProvider.superDigest=super:xQJmxLMiHGwaqBvst5y6rkB6HQs=",
    ]);
    let owner = authed(&server, "user:pass").await;
    let p = server.path("acl_super");
    let acl = [digest("user:pass", Permission::ALL)];
    let opts = CreateMode::Persistent.with_acls(Acls::new(&acl));
    owner.create(&p, b"mine", &opts).await.expect("create");
    owner
        .create(&format!("{p}/kid"), b"", &opts)
        .await
        .expect("create kid");
    let nothing = [Acl::new(Permission::NONE, AuthId::anyone())];
    owner
        .create(
            &format!("{p}/locked"),
            b"l",
            &CreateMode::Persistent.with_acls(Acls::new(&nothing)),
        )
        .await
        .expect("create locked");

    let wrong = authed(&server, "super:wrong").await;
    assert_eq!(wrong.get_data(&p).await, Err(Error::NoAuth));

    let root = authed(&server, "super:admin").await;
    let (data, _) = root.get_data(&p).await.expect("super reads");
    assert_eq!(data, b"mine");
    let (data, _) = root
        .get_data(&format!("{p}/locked"))
        .await
        .expect("super reads a node with no permissions");
    assert_eq!(data, b"l");
    let (got, _) = root.get_acl(&p).await.expect("super getACL");
    assert_eq!(got, acl.to_vec(), "super sees digests unmasked");
    root.set_data(&p, b"theirs", None)
        .await
        .expect("super writes");
    root.create(&format!("{p}/by_super"), b"", &PERSISTENT)
        .await
        .expect("super creates");
    root.set_acl(&format!("{p}/kid"), &nothing, None)
        .await
        .expect("super setACL");
    root.delete(&format!("{p}/kid"), None)
        .await
        .expect("super deletes");
    root.delete(&format!("{p}/locked"), None)
        .await
        .expect("super deletes");
    root.delete(&format!("{p}/by_super"), None)
        .await
        .expect("super deletes");
    root.delete(&p, None).await.expect("super deletes");
    assert_eq!(owner.check_stat(&p).await.expect("exists"), None);
}

#[tokio::test]
async fn get_acl_masks_digests_without_admin() {
    let server = TestServer::start();
    let owner = authed(&server, "user:pass").await;
    let p = server.path("acl_masked");
    let acl = [
        Acl::new(Permission::READ, AuthId::anyone()),
        digest("user:pass", Permission::ALL),
    ];
    owner
        .create(&p, b"", &CreateMode::Persistent.with_acls(Acls::new(&acl)))
        .await
        .expect("create");

    let (full, _) = owner.get_acl(&p).await.expect("admin getACL");
    assert_eq!(full, acl.to_vec());

    let reader = common::client(&server).await;
    let (masked, stat) = reader.get_acl(&p).await.expect("reader getACL");
    assert_eq!(
        masked,
        vec![
            Acl::new(Permission::READ, AuthId::anyone()),
            Acl::new(Permission::ALL, AuthId::new("digest", "user:x"))
        ],
        "a reader without ADMIN sees user:x"
    );
    assert_eq!(stat.aversion, 0);
    let other = authed(&server, "other:secret").await;
    let (masked, _) = other.get_acl(&p).await.expect("other getACL");
    assert_eq!(masked[1].id(), "user:x");

    // ADMIN alone is enough to see the digests, READ alone is enough to ask.
    let q = server.path("acl_masked_admin");
    let acl = [
        Acl::new(Permission::ADMIN, AuthId::anyone()),
        digest("user:pass", Permission::ALL),
    ];
    owner
        .create(&q, b"", &CreateMode::Persistent.with_acls(Acls::new(&acl)))
        .await
        .expect("create");
    let (full, _) = reader.get_acl(&q).await.expect("ADMIN getACL");
    assert_eq!(full, acl.to_vec());
    // Neither READ nor ADMIN: no answer.
    let r = server.path("acl_masked_none");
    let acl = [
        Acl::new(Permission::WRITE, AuthId::anyone()),
        digest("user:pass", Permission::ALL),
    ];
    owner
        .create(&r, b"", &CreateMode::Persistent.with_acls(Acls::new(&acl)))
        .await
        .expect("create");
    assert_eq!(reader.get_acl(&r).await, Err(Error::NoAuth));
}

#[tokio::test]
async fn unknown_auth_scheme_fails_the_session() {
    let server = TestServer::start();
    let p = server.path("acl_auth_failed");
    let bystander = common::client(&server).await;
    bystander
        .create(&p, b"", &PERSISTENT)
        .await
        .expect("create");

    let zk = common::client(&server).await;
    zk.create(
        &format!("{p}/eph"),
        b"",
        &CreateMode::Ephemeral.with_acls(Acls::anyone_all()),
    )
    .await
    .expect("ephemeral");
    assert_eq!(
        zk.auth("nosuchscheme", b"whatever").await,
        Err(Error::AuthFailed)
    );
    let ok = common::eventually(Duration::from_secs(5), || async {
        zk.state() == SessionState::AuthFailed
    })
    .await;
    assert!(ok, "session state {:?}, expected AuthFailed", zk.state());
    assert_eq!(zk.get_data(&p).await, Err(Error::AuthFailed));

    // Other sessions do not notice.
    bystander.get_data(&p).await.expect("bystander still fine");
    bystander
        .create(&format!("{p}/after"), b"", &PERSISTENT)
        .await
        .expect("bystander writes");
}
