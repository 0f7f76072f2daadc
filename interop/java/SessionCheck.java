// Session semantics checked with Apache ZooKeeper's own Java client.
//
//   java -cp <out>:<zookeeper.jar:...> SessionCheck <host:port> <tickTime>
//        [--wrong-password-keeps-connection]
//
// Prints one "OK <name>" line per passed check and "FAIL <name>: <why>" per
// failed one (every check runs with its own sessions, so one failure does not
// hide the others); exits 1 if a check failed, 3 if the whole run takes longer
// than WATCHDOG_MS.  Lines starting with "INFO" are details for humans.
//
// --wrong-password-keeps-connection: also require that a resume attempt with
// the right session id and a wrong password leaves the live connection of
// that session alone (oxkeeper's behaviour).  Apache ZooKeeper closes the
// live connection first (ZooKeeperServer.processConnectRequest calls
// serverCnxnFactory.closeSession(id, CLIENT_RECONNECT) before checking the
// password), so the flag is not passed when testing it.
//
// Compiled at test time by interop/java/test_java_client.py; never commit the
// .class files.

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.Watcher.Event.EventType;
import org.apache.zookeeper.Watcher.Event.KeeperState;
import org.apache.zookeeper.ZKUtil;
import org.apache.zookeeper.ZooDefs.Ids;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

public class SessionCheck {
    static final long CONNECT_MS = 5000; // wait for SyncConnected / Expired
    static final long EVENT_MS = 2000; // wait for a watch or state event
    static final long WATCHDOG_MS = 45000;
    static final int SESSION_MS = 4000; // requested timeout of ordinary sessions

    static String hosts;
    static int tick;
    static boolean wrongPasswordKeepsConnection;
    static String base;
    static final List<ZooKeeper> open = Collections.synchronizedList(new ArrayList<>());
    static final List<String> failed = new ArrayList<>();

    /** A failed check: its message is printed after "FAIL <name>: ". */
    static class CheckFailed extends RuntimeException {
        CheckFailed(String msg) {
            super(msg);
        }
    }

    static void check(boolean cond, String fmt, Object... args) {
        if (!cond) {
            throw new CheckFailed(String.format(fmt, args));
        }
    }

    static String hex(long id) {
        return "0x" + Long.toHexString(id);
    }

    /** Default watcher of a client: records every event, in delivery order. */
    static class Recorder implements Watcher {
        final String name;
        final LinkedBlockingQueue<WatchedEvent> queue = new LinkedBlockingQueue<>();
        final List<WatchedEvent> all = Collections.synchronizedList(new ArrayList<>());

        Recorder(String name) {
            this.name = name;
        }

        @Override
        public void process(WatchedEvent e) {
            all.add(e);
            queue.add(e);
        }

        /** the first state event (type None) with one of the given states
         *  within ms, skipping others; null on timeout */
        WatchedEvent awaitState(long ms, KeeperState... states) throws InterruptedException {
            long deadline = System.nanoTime() + ms * 1_000_000L;
            while (true) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return null;
                }
                WatchedEvent e = queue.poll(left, TimeUnit.NANOSECONDS);
                if (e == null) {
                    return null;
                }
                if (e.getType() == EventType.None && Arrays.asList(states).contains(e.getState())) {
                    return e;
                }
            }
        }

        List<KeeperState> statesSince(int index) {
            List<KeeperState> out = new ArrayList<>();
            synchronized (all) {
                for (WatchedEvent e : all.subList(index, all.size())) {
                    if (e.getType() == EventType.None) {
                        out.add(e.getState());
                    }
                }
            }
            return out;
        }

        String describe() {
            synchronized (all) {
                return name + " events " + all;
            }
        }
    }

    /** Watcher for one watch: counts down when it fires, keeps the events. */
    static class Once implements Watcher {
        final CountDownLatch fired = new CountDownLatch(1);
        final List<WatchedEvent> events = Collections.synchronizedList(new ArrayList<>());
        final List<String> order;

        Once(List<String> order) {
            this.order = order;
        }

        @Override
        public void process(WatchedEvent e) {
            events.add(e);
            if (order != null) {
                order.add("event " + e.getType() + " " + e.getPath());
            }
            fired.countDown();
        }

        WatchedEvent await(long ms) throws InterruptedException {
            if (!fired.await(ms, TimeUnit.MILLISECONDS)) {
                return null;
            }
            return events.get(0);
        }
    }

    static ZooKeeper track(ZooKeeper zk) {
        open.add(zk);
        return zk;
    }

    /** a new session, connected */
    static ZooKeeper connect(int timeoutMs, Recorder rec) throws Exception {
        ZooKeeper zk = track(new ZooKeeper(hosts, timeoutMs, rec));
        WatchedEvent e = rec.awaitState(CONNECT_MS, KeeperState.SyncConnected, KeeperState.Expired,
                KeeperState.AuthFailed);
        check(e != null && e.getState() == KeeperState.SyncConnected,
                "%s: no SyncConnected within %d ms (got %s; %s)", rec.name, CONNECT_MS, e, rec.describe());
        check(zk.getSessionId() != 0, "%s: session id 0 after SyncConnected", rec.name);
        return zk;
    }

    static ZooKeeper connect(int timeoutMs, String name) throws Exception {
        return connect(timeoutMs, new Recorder(name));
    }

    /** a ZooKeeper object resuming (id, passwd); the caller waits for its events */
    static ZooKeeper resume(long id, byte[] passwd, Recorder rec) throws Exception {
        return track(new ZooKeeper(hosts, SESSION_MS, rec, id, passwd));
    }

    static void closeQuietly(ZooKeeper zk) {
        if (zk == null) {
            return;
        }
        try {
            zk.close(2000);
        } catch (Exception e) {
            System.out.println("INFO close failed: " + e);
        }
        open.remove(zk);
    }

    /** drop the client's connection without sending closeSession (the
     *  session lives on on the server) and stop it from reconnecting */
    static void abandon(ZooKeeper zk) {
        zk.getTestable().injectSessionExpiration();
        open.remove(zk);
    }

    static String ephemeral(ZooKeeper zk, String name) throws Exception {
        return zk.create(base + "/" + name, new byte[0], Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
    }

    static void waitConnected(ZooKeeper zk, String name) throws InterruptedException {
        long deadline = System.nanoTime() + CONNECT_MS * 1_000_000L;
        while (zk.getState() != ZooKeeper.States.CONNECTED) {
            check(System.nanoTime() < deadline, "%s not CONNECTED within %d ms (state %s)", name,
                    CONNECT_MS, zk.getState());
            Thread.sleep(10);
        }
    }

    // ------------------------------------------------------------- checks

    static void connectEphemeral() throws Exception {
        ZooKeeper zk = connect(SESSION_MS, "client");
        try {
            String path = ephemeral(zk, "eph-owner");
            Stat st = zk.exists(path, false);
            check(st != null, "exists(%s) returned null right after create", path);
            check(st.getEphemeralOwner() == zk.getSessionId(), "ephemeralOwner %s != getSessionId() %s",
                    hex(st.getEphemeralOwner()), hex(zk.getSessionId()));
            Stat st2 = new Stat();
            zk.getData(path, false, st2);
            check(st2.getEphemeralOwner() == zk.getSessionId(), "getData Stat: ephemeralOwner %s != %s",
                    hex(st2.getEphemeralOwner()), hex(zk.getSessionId()));
            System.out.println("INFO session " + hex(zk.getSessionId()) + " negotiated "
                    + zk.getSessionTimeout() + " ms");
        } finally {
            closeQuietly(zk);
        }
    }

    static void negotiatedTimeout(int requested, int expected) throws Exception {
        ZooKeeper zk = connect(requested, "timeout-" + requested);
        try {
            int got = zk.getSessionTimeout();
            check(got == expected, "requested %d ms with tickTime %d: getSessionTimeout() = %d, expected %d",
                    requested, tick, got, expected);
        } finally {
            closeQuietly(zk);
        }
    }

    static void resumeSession() throws Exception {
        Recorder rec1 = new Recorder("first");
        ZooKeeper zk1 = connect(SESSION_MS, rec1);
        ZooKeeper zk2 = null;
        ZooKeeper obs = null;
        try {
            long id = zk1.getSessionId();
            byte[] pw = zk1.getSessionPasswd();
            String path = ephemeral(zk1, "eph-resume");
            int mark = rec1.all.size();

            Recorder rec2 = new Recorder("second");
            zk2 = resume(id, pw, rec2);
            WatchedEvent e = rec2.awaitState(CONNECT_MS, KeeperState.SyncConnected, KeeperState.Expired);
            check(e != null && e.getState() == KeeperState.SyncConnected,
                    "second ZooKeeper(id=%s, passwd) did not connect: %s; %s", hex(id), e, rec2.describe());
            check(zk2.getSessionId() == id, "second client has session %s, expected %s",
                    hex(zk2.getSessionId()), hex(id));
            check(Arrays.equals(zk2.getSessionPasswd(), pw), "second client got a different password");

            // the server hands the session over: the first connection is closed
            WatchedEvent d = rec1.awaitState(EVENT_MS, KeeperState.Disconnected);
            check(d != null, "first client not disconnected within %d ms after the session was resumed "
                    + "elsewhere (%s)", EVENT_MS, rec1.describe());
            abandon(zk1); // no closeSession, no reconnect fight
            zk1 = null;
            System.out.println("INFO first client states after resume: " + rec1.statesSince(mark));

            waitConnected(zk2, "second client");
            Stat st = zk2.exists(path, false);
            check(st != null, "ephemeral %s gone after resume", path);
            check(st.getEphemeralOwner() == id, "ephemeralOwner %s != %s", hex(st.getEphemeralOwner()), hex(id));
            obs = connect(SESSION_MS, "observer");
            Stat st2 = obs.exists(path, false);
            check(st2 != null && st2.getEphemeralOwner() == id,
                    "observer: ephemeral %s after resume: %s", path, st2);
        } finally {
            closeQuietly(obs);
            closeQuietly(zk2);
            closeQuietly(zk1);
        }
    }

    static void wrongPassword() throws Exception {
        Recorder recO = new Recorder("owner");
        ZooKeeper owner = connect(SESSION_MS, recO);
        ZooKeeper[] bad = new ZooKeeper[1];
        ZooKeeper[] obs = new ZooKeeper[1];
        try {
            long id = owner.getSessionId();
            byte[] wrong = owner.getSessionPasswd().clone();
            for (int i = 0; i < wrong.length; i++) {
                wrong[i] ^= (byte) 0xFF;
            }
            String path = ephemeral(owner, "eph-wrongpw");
            int mark = recO.all.size();

            run("wrong_password_expired", () -> {
                Recorder recB = new Recorder("wrong-password");
                bad[0] = resume(id, wrong, recB);
                WatchedEvent e = recB.awaitState(CONNECT_MS, KeeperState.Expired, KeeperState.SyncConnected);
                check(e != null && e.getState() == KeeperState.Expired,
                        "resume of %s with a wrong password: expected KeeperState.Expired, got %s; %s",
                        hex(id), e, recB.describe());
                check(bad[0].getState() == ZooKeeper.States.CLOSED,
                        "wrong-password client state %s, expected CLOSED", bad[0].getState());
            });
            closeQuietly(bad[0]);

            if (wrongPasswordKeepsConnection) {
                run("wrong_password_keeps_connection", () -> {
                    Stat st;
                    try {
                        st = owner.exists(path, false); // a round trip on the owner's connection
                    } catch (KeeperException ke) {
                        throw new CheckFailed("owner's request after the wrong-password attempt failed: " + ke
                                + "; " + recO.describe());
                    }
                    List<KeeperState> states = recO.statesSince(mark);
                    check(states.isEmpty(), "owner's connection saw %s after the wrong-password attempt "
                            + "(expected no state change)", states);
                    check(owner.getState() == ZooKeeper.States.CONNECTED, "owner state %s", owner.getState());
                    check(owner.getSessionId() == id, "owner session changed to %s", hex(owner.getSessionId()));
                    check(st != null && st.getEphemeralOwner() == id, "owner: ephemeral %s: %s", path, st);
                });
            } else {
                System.out.println("INFO owner states after the wrong-password attempt: " + recO.statesSince(mark));
            }

            run("wrong_password_node_survives", () -> {
                obs[0] = connect(SESSION_MS, "observer");
                Stat st = obs[0].exists(path, false);
                check(st != null, "ephemeral %s of session %s gone after a wrong-password resume attempt",
                        path, hex(id));
                check(st.getEphemeralOwner() == id, "ephemeralOwner %s != %s", hex(st.getEphemeralOwner()),
                        hex(id));
            });
        } finally {
            closeQuietly(bad[0]);
            closeQuietly(obs[0]);
            closeQuietly(owner);
        }
    }

    static void closedSessionExpired() throws Exception {
        ZooKeeper a = connect(SESSION_MS, "A");
        long id = a.getSessionId();
        byte[] pw = a.getSessionPasswd();
        closeQuietly(a);
        Recorder rec = new Recorder("resume-closed");
        ZooKeeper r = resume(id, pw, rec);
        try {
            WatchedEvent e = rec.awaitState(CONNECT_MS, KeeperState.Expired, KeeperState.SyncConnected);
            check(e != null && e.getState() == KeeperState.Expired,
                    "resume of closed session %s: expected KeeperState.Expired, got %s; %s", hex(id), e,
                    rec.describe());
        } finally {
            closeQuietly(r);
        }
    }

    static void closeRemovesEphemeral() throws Exception {
        ZooKeeper c = connect(20 * tick, "closing");
        ZooKeeper obs = connect(SESSION_MS, "observer");
        try {
            String path = ephemeral(c, "eph-close");
            Once w = new Once(null);
            check(obs.exists(path, w) != null, "observer does not see %s", path);
            long t0 = System.nanoTime();
            c.close();
            open.remove(c);
            long closeMs = (System.nanoTime() - t0) / 1_000_000L;
            Stat st = obs.exists(path, false);
            check(st == null, "ephemeral %s still exists right after close() returned (%d ms): %s", path,
                    closeMs, st);
            WatchedEvent e = w.await(EVENT_MS);
            check(e != null && e.getType() == EventType.NodeDeleted && path.equals(e.getPath()),
                    "observer's exists watch: expected NodeDeleted %s, got %s", path, e);
            check(closeMs < 10L * tick, "close() took %d ms", closeMs);
        } finally {
            closeQuietly(obs);
            closeQuietly(c);
        }
    }

    static void dataWatchBeforeSetDataReturns() throws Exception {
        ZooKeeper zk = connect(SESSION_MS, "client");
        try {
            String x = zk.create(base + "/x", "a".getBytes(), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            Once w = new Once(null);
            zk.getData(x, w, null);
            zk.setData(x, "b".getBytes(), -1);
            // the server sends the event before the reply; the client's
            // event thread delivers it at once (short await, no real wait)
            WatchedEvent e = w.await(500);
            check(e != null, "no watch event within 500 ms after setData(%s) returned", x);
            check(e.getType() == EventType.NodeDataChanged, "event type %s, expected NodeDataChanged", e.getType());
            check(x.equals(e.getPath()), "event path %s, expected %s", e.getPath(), x);
            check(e.getState() == KeeperState.SyncConnected, "event state %s", e.getState());
            check(w.events.size() == 1, "watch fired %d times: %s", w.events.size(), w.events);
        } finally {
            closeQuietly(zk);
        }
    }

    static void dataWatchBeforeAsyncReply() throws Exception {
        ZooKeeper zk = connect(SESSION_MS, "client");
        try {
            String x = zk.create(base + "/y", "a".getBytes(), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            List<String> order = Collections.synchronizedList(new ArrayList<>());
            Once w = new Once(order);
            zk.getData(x, w, null);
            CountDownLatch replied = new CountDownLatch(1);
            // async callbacks and watch events share the client's event
            // thread, in socket order: the event must come first
            zk.setData(x, "b".getBytes(), -1, (rc, path, ctx, stat) -> {
                order.add("reply rc=" + rc);
                replied.countDown();
            }, null);
            check(replied.await(EVENT_MS, TimeUnit.MILLISECONDS), "no setData reply within %d ms", EVENT_MS);
            List<String> expected = Arrays.asList("event NodeDataChanged " + x, "reply rc=0");
            check(order.equals(expected), "delivery order %s, expected %s", order, expected);
        } finally {
            closeQuietly(zk);
        }
    }

    static void childWatch() throws Exception {
        ZooKeeper zk = connect(SESSION_MS, "client");
        try {
            String p = zk.create(base + "/p", new byte[0], Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            Once w = new Once(null);
            List<String> kids = zk.getChildren(p, w);
            check(kids.isEmpty(), "children of new %s: %s", p, kids);
            zk.create(p + "/c", new byte[0], Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            WatchedEvent e = w.await(EVENT_MS);
            check(e != null, "no NodeChildrenChanged within %d ms", EVENT_MS);
            check(e.getType() == EventType.NodeChildrenChanged, "event type %s, expected NodeChildrenChanged",
                    e.getType());
            check(p.equals(e.getPath()), "event path %s, expected %s", e.getPath(), p);
            check(zk.getChildren(p, false).equals(Collections.singletonList("c")), "children of %s: %s", p,
                    zk.getChildren(p, false));
        } finally {
            closeQuietly(zk);
        }
    }

    // --------------------------------------------------------------- main

    interface Check {
        void run() throws Exception;
    }

    static void fail(String name, String msg) {
        failed.add(name);
        System.out.println("FAIL " + name + ": " + msg);
    }

    static void run(String name, Check c) {
        long t0 = System.nanoTime();
        try {
            c.run();
            System.out.println("OK " + name);
        } catch (CheckFailed f) {
            fail(name, f.getMessage());
        } catch (Exception e) {
            fail(name, "unexpected " + e);
        }
        System.out.println("INFO " + name + " took " + (System.nanoTime() - t0) / 1_000_000L + " ms");
    }

    /** runs checks that report themselves; fails the group on setup errors */
    static void group(String name, Check c) {
        try {
            c.run();
        } catch (CheckFailed f) {
            fail(name, f.getMessage());
        } catch (Exception e) {
            fail(name, "unexpected " + e);
        }
    }

    public static void main(String[] args) throws Exception {
        List<String> pos = new ArrayList<>();
        for (String a : args) {
            if (a.equals("--wrong-password-keeps-connection")) {
                wrongPasswordKeepsConnection = true;
            } else if (a.startsWith("--")) {
                System.err.println("SessionCheck: unknown option " + a);
                System.exit(2);
            } else {
                pos.add(a);
            }
        }
        if (pos.size() != 2) {
            System.err.println("usage: SessionCheck <host:port> <tickTime> [--wrong-password-keeps-connection]");
            System.exit(2);
        }
        hosts = pos.get(0);
        tick = Integer.parseInt(pos.get(1));

        Thread watchdog = new Thread(() -> {
            try {
                Thread.sleep(WATCHDOG_MS);
            } catch (InterruptedException e) {
                return;
            }
            System.out.println("FAIL watchdog: still running after " + WATCHDOG_MS + " ms");
            System.out.flush();
            Runtime.getRuntime().halt(3);
        }, "watchdog");
        watchdog.setDaemon(true);
        watchdog.start();

        long t0 = System.nanoTime();
        base = "/java-session-check-" + Long.toHexString(System.nanoTime() & 0xffffffL);
        ZooKeeper admin;
        try {
            admin = connect(SESSION_MS, "admin");
            admin.create(base, new byte[0], Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        } catch (Exception e) {
            System.out.println("FAIL setup: " + (e instanceof CheckFailed ? e.getMessage() : e.toString()));
            System.err.println("SessionCheck: cannot set up against " + hosts);
            System.exit(1);
            return;
        }

        run("connect_ephemeral", SessionCheck::connectEphemeral);
        run("negotiated_timeout_min", () -> negotiatedTimeout(100, 2 * tick));
        run("negotiated_timeout_max", () -> negotiatedTimeout(600000, 20 * tick));
        run("resume_session", SessionCheck::resumeSession);
        // wrong_password_expired, [wrong_password_keeps_connection,]
        // wrong_password_node_survives
        group("wrong_password", SessionCheck::wrongPassword);
        run("closed_session_expired", SessionCheck::closedSessionExpired);
        run("close_removes_ephemeral", SessionCheck::closeRemovesEphemeral);
        run("data_watch_before_setdata_returns", SessionCheck::dataWatchBeforeSetDataReturns);
        run("data_watch_before_async_reply", SessionCheck::dataWatchBeforeAsyncReply);
        run("child_watch", SessionCheck::childWatch);

        try {
            ZKUtil.deleteRecursive(admin, base);
        } catch (Exception e) {
            System.out.println("INFO cleanup of " + base + " failed: " + e);
        }
        closeQuietly(admin);
        for (ZooKeeper zk : new ArrayList<>(open)) {
            closeQuietly(zk);
        }
        System.out.println("INFO total " + (System.nanoTime() - t0) / 1_000_000L + " ms");
        System.out.flush();
        if (!failed.isEmpty()) {
            System.err.println("SessionCheck: " + failed.size() + " check(s) failed: " + failed);
            System.exit(1);
        }
        System.exit(0);
    }
}
