//! Every jute record that crosses the client wire, field for field as in `zookeeper.jute`.

use bytes::Bytes;

use crate::jute_record;

jute_record!(
    /// An identity: a scheme and a scheme-specific id (`digest`, `user:hash`).
    Id { scheme: String, id: String }
);

jute_record!(
    /// One ACL entry: permission bits granted to an identity.
    Acl { perms: i32, id: Id }
);

jute_record!(
    /// The 68-byte metadata of a znode as clients see it.
    Stat {
        czxid: i64,
        mzxid: i64,
        ctime: i64,
        mtime: i64,
        version: i32,
        cversion: i32,
        aversion: i32,
        ephemeral_owner: i64,
        data_length: i32,
        num_children: i32,
        pzxid: i64,
    }
);

jute_record!(ClientInfo {
    auth_scheme: String,
    user: String
});

jute_record!(RequestHeader { xid: i32, op: i32 });
jute_record!(ReplyHeader {
    xid: i32,
    zxid: i64,
    err: i32
});
jute_record!(MultiHeader {
    op: i32,
    done: bool,
    err: i32
});
jute_record!(AuthPacket {
    auth_type: i32,
    scheme: String,
    auth: Bytes
});
jute_record!(WatcherEvent {
    event_type: i32,
    state: i32,
    path: String
});
jute_record!(ErrorResponse { err: i32 });

jute_record!(CreateRequest { path: String, data: Option<Bytes>, acl: Vec<Acl>, flags: i32 });
jute_record!(CreateTtlRequest {
    path: String,
    data: Option<Bytes>,
    acl: Vec<Acl>,
    flags: i32,
    ttl: i64,
});
jute_record!(DeleteRequest {
    path: String,
    version: i32
});
jute_record!(
    /// Shared by exists, getData, getChildren and getChildren2.
    PathWatchRequest { path: String, watch: bool }
);
jute_record!(SetDataRequest { path: String, data: Option<Bytes>, version: i32 });
jute_record!(
    /// Shared by getACL, sync, getEphemerals, getAllChildrenNumber and deleteContainer.
    PathRequest { path: String }
);
jute_record!(SetAclRequest { path: String, acl: Vec<Acl>, version: i32 });
jute_record!(CheckVersionRequest {
    path: String,
    version: i32
});
jute_record!(ReconfigRequest {
    joining_servers: String,
    leaving_servers: String,
    new_members: String,
    cur_config_id: i64,
});
jute_record!(
    /// Shared by checkWatches and removeWatches.
    WatchTypeRequest { path: String, watch_type: i32 }
);
jute_record!(AddWatchRequest {
    path: String,
    mode: i32
});
jute_record!(SetWatches {
    relative_zxid: i64,
    data_watches: Vec<String>,
    exist_watches: Vec<String>,
    child_watches: Vec<String>,
});
jute_record!(SetWatches2 {
    relative_zxid: i64,
    data_watches: Vec<String>,
    exist_watches: Vec<String>,
    child_watches: Vec<String>,
    persistent_watches: Vec<String>,
    persistent_recursive_watches: Vec<String>,
});
jute_record!(SaslRequest { token: Bytes });

jute_record!(CreateResponse { path: String });
jute_record!(Create2Response {
    path: String,
    stat: Stat
});
jute_record!(StatResponse { stat: Stat });
jute_record!(GetDataResponse { data: Option<Bytes>, stat: Stat });
jute_record!(GetAclResponse { acl: Vec<Acl>, stat: Stat });
jute_record!(GetChildrenResponse { children: Vec<String> });
jute_record!(GetChildren2Response { children: Vec<String>, stat: Stat });
jute_record!(PathResponse { path: String });
jute_record!(CountResponse { total: i32 });
jute_record!(PathListResponse { paths: Vec<String> });
jute_record!(WhoAmIResponse { client_info: Vec<ClientInfo> });

jute_record!(
    /// The handshake's first frame. `read_only` is `None` for pre-3.4 clients that do not
    /// send it, and the response must then omit it too.
    ConnectRequest {
        protocol_version: i32,
        last_zxid_seen: i64,
        timeout_ms: i32,
        session_id: i64,
        passwd: Bytes,
        read_only: Option<bool>,
    }
);

jute_record!(ConnectResponse {
    protocol_version: i32,
    timeout_ms: i32,
    session_id: i64,
    passwd: Bytes,
    read_only: Option<bool>,
});

/// Permission bits (`ZooDefs.Perms`).
pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 1 << 1;
    pub const CREATE: i32 = 1 << 2;
    pub const DELETE: i32 = 1 << 3;
    pub const ADMIN: i32 = 1 << 4;
    pub const ALL: i32 = READ | WRITE | CREATE | DELETE | ADMIN;
}

impl Id {
    pub fn new(scheme: &str, id: &str) -> Self {
        Id {
            scheme: scheme.to_owned(),
            id: id.to_owned(),
        }
    }
    pub fn anyone() -> Self {
        Id::new("world", "anyone")
    }
}

impl Acl {
    pub fn new(perms: i32, scheme: &str, id: &str) -> Self {
        Acl {
            perms,
            id: Id::new(scheme, id),
        }
    }
    /// `OPEN_ACL_UNSAFE`.
    pub fn open() -> Vec<Acl> {
        vec![Acl {
            perms: perms::ALL,
            id: Id::anyone(),
        }]
    }
    /// `READ_ACL_UNSAFE`.
    pub fn read_only() -> Vec<Acl> {
        vec![Acl {
            perms: perms::READ,
            id: Id::anyone(),
        }]
    }
}
