import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.barriers.DistributedBarrier;
import org.apache.curator.framework.recipes.cache.ChildData;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.nodes.PersistentTtlNode;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.framework.recipes.shared.VersionedValue;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;
import org.apache.zookeeper.server.EphemeralType;

/**
 * Apache Curator recipes against a ZooKeeper-compatible server.
 *
 * Usage: java CuratorCheck host:port [container-check-interval-ms]
 *
 * The server must run with extendedTypesEnabled=true (TTL nodes) and a short
 * container/TTL reaper interval (znode.container.checkIntervalMs, default
 * assumed 500 ms). Prints "OK <name>" or "FAIL <name>: <why>" per check;
 * exits 0 only if every check passed, 1 on a failed check, 2 on a usage
 * error and 3 when the watchdog fires.
 */
public class CuratorCheck {
    static final long WATCHDOG_MS = 50_000;

    static String hosts;
    static long reapIntervalMs = 500;
    static String root;
    static final List<CuratorFramework> clients = Collections.synchronizedList(new ArrayList<>());
    static int failures = 0;

    // ---------------------------------------------------------------- helpers

    static class CheckFailed extends Exception {
        private static final long serialVersionUID = 1L;
        CheckFailed(String msg) { super(msg); }
    }

    interface Body { void run(Steps s) throws Exception; }

    /** a group of checks that run in order; on an exception the current
     *  step fails and the remaining ones are reported as not reached */
    static class Steps {
        final String[] names;
        int next = 0;
        Steps(String... names) { this.names = names; }
        void ok(String name) {
            if (next >= names.length || !names[next].equals(name)) {
                throw new IllegalStateException("step " + name + " out of order in " + Arrays.toString(names));
            }
            System.out.println("OK " + name);
            System.out.flush();
            next++;
        }
    }

    static void group(Body body, String... names) {
        Steps s = new Steps(names);
        long t0 = System.nanoTime();
        try {
            body.run(s);
            if (s.next != names.length) {
                throw new IllegalStateException("not every step was reported: " + Arrays.toString(names));
            }
        } catch (Throwable t) {
            String why = (t instanceof CheckFailed) ? t.getMessage() : t.toString();
            for (int i = s.next; i < names.length; i++) {
                failures++;
                System.out.println("FAIL " + names[i] + ": "
                        + (i == s.next ? why : "not reached (" + names[s.next] + " failed)"));
            }
            System.out.flush();
            System.err.println("--- " + names[s.next] + " failed:");
            t.printStackTrace();
        }
        System.err.printf("[%s] %.2f s%n", String.join(",", names), (System.nanoTime() - t0) / 1e9);
    }

    static void check(boolean cond, String fmt, Object... args) throws CheckFailed {
        if (!cond) throw new CheckFailed(String.format(fmt, args));
    }

    static void waitFor(String what, long timeoutMs, BooleanSupplier pred) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        while (!pred.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new CheckFailed("timed out after " + timeoutMs + " ms waiting for " + what);
            }
            Thread.sleep(20);
        }
    }

    static CuratorFramework newClient() throws Exception {
        CuratorFramework c = CuratorFrameworkFactory.builder()
                .connectString(hosts)
                .sessionTimeoutMs(10_000)
                .connectionTimeoutMs(5_000)
                .retryPolicy(new RetryNTimes(3, 200))
                .build();
        clients.add(c);
        c.start();
        if (!c.blockUntilConnected(10, TimeUnit.SECONDS)) {
            throw new CheckFailed("Curator client did not connect to " + hosts + " within 10 s");
        }
        return c;
    }

    static void closeQuietly(AutoCloseable c) {
        if (c == null) return;
        try { c.close(); } catch (Exception ignore) { }
    }

    static byte[] bytes(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    static String str(byte[] b) { return b == null ? "null" : new String(b, StandardCharsets.UTF_8); }

    static boolean exists(CuratorFramework c, String path) {
        try {
            return c.checkExists().forPath(path) != null;
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }

    static String hex(long v) { return String.format("0x%016x", v); }

    // ------------------------------------------------------------ LeaderLatch

    static void leaderLatch(Steps s) throws Exception {
        String path = root + "/leader";
        List<LeaderLatch> latches = new ArrayList<>();
        try {
            for (int i = 0; i < 3; i++) {
                LeaderLatch l = new LeaderLatch(newClient(), path, "latch-" + i);
                latches.add(l);
                l.start();
            }
            waitFor("one of 3 LeaderLatches to become leader", 10_000,
                    () -> latches.stream().anyMatch(LeaderLatch::hasLeadership));
            Thread.sleep(300); // let a second (wrong) leader show up, if it would
            List<LeaderLatch> leaders = new ArrayList<>();
            for (LeaderLatch l : latches) if (l.hasLeadership()) leaders.add(l);
            check(leaders.size() == 1, "expected exactly 1 leader, got %d", leaders.size());
            LeaderLatch leader = leaders.get(0);
            for (LeaderLatch l : latches) {
                check(l.getLeader().getId().equals(leader.getId()) && l.getLeader().isLeader(),
                        "%s sees leader %s, but %s holds leadership", l.getId(), l.getLeader(), leader.getId());
                check(l.getParticipants().size() == 3, "%s sees %d participants, expected 3",
                        l.getId(), l.getParticipants().size());
            }
            s.ok("leader_latch_single_leader");

            latches.remove(leader);
            leader.close();
            waitFor("another LeaderLatch to take over after the leader closed", 10_000,
                    () -> latches.stream().anyMatch(LeaderLatch::hasLeadership));
            Thread.sleep(300);
            int n = 0;
            for (LeaderLatch l : latches) if (l.hasLeadership()) n++;
            check(n == 1, "after closing the leader expected exactly 1 new leader, got %d", n);
            check(!leader.hasLeadership(), "the closed latch still claims leadership");
            for (LeaderLatch l : latches) {
                check(l.getParticipants().size() == 2, "%s sees %d participants after close, expected 2",
                        l.getId(), l.getParticipants().size());
            }
            s.ok("leader_latch_takeover");
        } finally {
            for (LeaderLatch l : latches) closeQuietly(l);
        }
    }

    // ------------------------------------------------------- InterProcessMutex

    static void mutex(Steps s) throws Exception {
        String lockPath = root + "/lock";
        String counterPath = root + "/counter";
        CuratorFramework a = newClient();
        CuratorFramework b = newClient();
        a.create().forPath(counterPath, bytes("0"));

        final int threadsPerClient = 2;
        final int iterations = 15;
        AtomicInteger holders = new AtomicInteger();
        AtomicInteger maxHolders = new AtomicInteger();
        AtomicReference<Throwable> error = new AtomicReference<>();
        List<Thread> threads = new ArrayList<>();
        CyclicBarrier start = new CyclicBarrier(2 * threadsPerClient);
        for (CuratorFramework c : Arrays.asList(a, b)) {
            for (int t = 0; t < threadsPerClient; t++) {
                // one InterProcessMutex per thread: the recipe is per-thread reentrant,
                // separate instances contend like separate processes
                InterProcessMutex m = new InterProcessMutex(c, lockPath);
                Thread th = new Thread(() -> {
                    try {
                        start.await(10, TimeUnit.SECONDS);
                        for (int i = 0; i < iterations; i++) {
                            if (!m.acquire(10, TimeUnit.SECONDS)) {
                                throw new CheckFailed("acquire timed out after 10 s");
                            }
                            try {
                                int h = holders.incrementAndGet();
                                maxHolders.accumulateAndGet(h, Math::max);
                                // read-modify-write without a version: only the lock
                                // prevents lost updates
                                int v = Integer.parseInt(str(c.getData().forPath(counterPath)));
                                Thread.sleep(1);
                                c.setData().forPath(counterPath, bytes(Integer.toString(v + 1)));
                                holders.decrementAndGet();
                            } finally {
                                m.release();
                            }
                        }
                    } catch (Throwable e) {
                        error.compareAndSet(null, e);
                    }
                }, "mutex-worker");
                threads.add(th);
                th.start();
            }
        }
        for (Thread th : threads) {
            th.join(30_000);
            check(!th.isAlive(), "a mutex worker is still running after 30 s");
        }
        if (error.get() != null) {
            Throwable e = error.get();
            throw new CheckFailed("mutex worker failed: " + e);
        }
        int expected = 2 * threadsPerClient * iterations;
        int got = Integer.parseInt(str(a.getData().forPath(counterPath)));
        check(maxHolders.get() == 1, "%d holders inside the lock at once", maxHolders.get());
        check(got == expected, "counter is %d after %d locked increments (lost updates)", got, expected);
        List<String> left = a.getChildren().forPath(lockPath);
        check(left.isEmpty(), "lock nodes left after every release: %s", left);
        s.ok("mutex_exclusion");

        // reentrancy
        InterProcessMutex ma = new InterProcessMutex(a, lockPath);
        InterProcessMutex mb = new InterProcessMutex(b, lockPath);
        check(ma.acquire(5, TimeUnit.SECONDS), "first acquire failed");
        check(ma.acquire(5, TimeUnit.SECONDS), "reentrant acquire by the owning thread failed");
        check(ma.isAcquiredInThisProcess() && ma.isOwnedByCurrentThread(), "mutex not owned after acquire");
        check(a.getChildren().forPath(lockPath).size() == 1,
                "reentrant acquire created another lock node: %s", a.getChildren().forPath(lockPath));
        ma.release();
        check(ma.isOwnedByCurrentThread(), "one release of a twice-acquired mutex released it");
        AtomicBoolean otherGot = new AtomicBoolean();
        Thread other = new Thread(() -> {
            try {
                if (mb.acquire(300, TimeUnit.MILLISECONDS)) {
                    otherGot.set(true);
                    mb.release();
                }
            } catch (Exception e) {
                error.compareAndSet(null, e);
            }
        });
        other.start();
        other.join(10_000);
        check(!otherGot.get(), "another client acquired the lock while it was still held once");
        ma.release();
        check(!ma.isAcquiredInThisProcess(), "mutex still held after the second release");
        Thread other2 = new Thread(() -> {
            try {
                if (mb.acquire(5, TimeUnit.SECONDS)) {
                    otherGot.set(true);
                    mb.release();
                }
            } catch (Exception e) {
                error.compareAndSet(null, e);
            }
        });
        other2.start();
        other2.join(10_000);
        check(error.get() == null, "error: %s", error.get());
        check(otherGot.get(), "another client could not acquire the lock after it was fully released");
        s.ok("mutex_reentrant");
    }

    // ------------------------------------------------------ DistributedBarrier

    static void barrier(Steps s) throws Exception {
        String path = root + "/barrier";
        CuratorFramework owner = newClient();
        DistributedBarrier ownerBarrier = new DistributedBarrier(owner, path);
        ownerBarrier.setBarrier();
        check(exists(owner, path), "setBarrier did not create %s", path);

        int waiters = 2;
        CountDownLatch passed = new CountDownLatch(waiters);
        AtomicReference<Throwable> error = new AtomicReference<>();
        AtomicInteger early = new AtomicInteger();
        AtomicBoolean removed = new AtomicBoolean();
        for (int i = 0; i < waiters; i++) {
            CuratorFramework c = newClient();
            DistributedBarrier b = new DistributedBarrier(c, path);
            new Thread(() -> {
                try {
                    if (b.waitOnBarrier(15, TimeUnit.SECONDS)) {
                        if (!removed.get()) early.incrementAndGet();
                        passed.countDown();
                    }
                } catch (Throwable e) {
                    error.compareAndSet(null, e);
                }
            }, "barrier-waiter").start();
        }
        // a waiter with a short timeout returns false while the barrier is set
        DistributedBarrier probe = new DistributedBarrier(owner, path);
        check(!probe.waitOnBarrier(200, TimeUnit.MILLISECONDS),
                "waitOnBarrier(200 ms) returned true while the barrier was set");
        Thread.sleep(300);
        check(passed.getCount() == waiters && early.get() == 0,
                "%d waiters passed the barrier before removeBarrier", waiters - passed.getCount());
        removed.set(true);
        ownerBarrier.removeBarrier();
        check(passed.await(10, TimeUnit.SECONDS),
                "%d of %d waiters still blocked 10 s after removeBarrier", passed.getCount(), waiters);
        check(error.get() == null, "waiter failed: %s", error.get());
        check(early.get() == 0, "a waiter passed before removeBarrier");
        s.ok("barrier");
    }

    // ---------------------------------------------------------------- SharedCount

    static void sharedCount(Steps s) throws Exception {
        String path = root + "/count";
        CuratorFramework ca = newClient();
        CuratorFramework cb = newClient();
        SharedCount a = new SharedCount(ca, path, 0);
        SharedCount b = new SharedCount(cb, path, 0);
        try {
            a.start();
            b.start();
            check(a.getCount() == 0 && b.getCount() == 0, "initial counts %d/%d, expected 0", a.getCount(), b.getCount());

            a.setCount(5);
            waitFor("B to see A's setCount(5)", 5_000, () -> b.getCount() == 5);

            VersionedValue<Integer> vb = b.getVersionedValue();
            Stat st = cb.checkExists().forPath(path);
            check(vb.getVersion() == st.getVersion(),
                    "SharedCount version %d != znode version %d", vb.getVersion(), st.getVersion());
            check(b.trySetCount(vb, 7), "trySetCount with the current version failed");
            waitFor("A to see B's trySetCount(7)", 5_000, () -> a.getCount() == 7);
            check(a.getVersionedValue().getVersion() == vb.getVersion() + 1,
                    "A sees version %d after one update from %d", a.getVersionedValue().getVersion(), vb.getVersion());
            // stale version: refused by the recipe, and by the server itself
            check(!a.trySetCount(vb, 99), "trySetCount with a stale version succeeded");
            try {
                ca.setData().withVersion(vb.getVersion()).forPath(path, new byte[] {0, 0, 0, 99});
                throw new CheckFailed("setData with the stale version " + vb.getVersion() + " succeeded");
            } catch (KeeperException.BadVersionException expected) {
                // right
            }
            check(a.getCount() == 7 && b.getCount() == 7, "counts %d/%d after stale attempts, expected 7",
                    a.getCount(), b.getCount());

            // race: both try the same version at once, exactly one wins
            for (int round = 0; round < 5; round++) {
                int base = a.getCount();
                waitFor("both instances at count " + base, 5_000,
                        () -> b.getCount() == base && b.getVersionedValue().getVersion() == a.getVersionedValue().getVersion());
                VersionedValue<Integer> va = a.getVersionedValue();
                VersionedValue<Integer> vb2 = b.getVersionedValue();
                CyclicBarrier go = new CyclicBarrier(2);
                AtomicInteger wins = new AtomicInteger();
                AtomicReference<Throwable> err = new AtomicReference<>();
                Thread ta = new Thread(() -> {
                    try { go.await(); if (a.trySetCount(va, base + 10)) wins.incrementAndGet(); }
                    catch (Throwable e) { err.set(e); }
                });
                Thread tb = new Thread(() -> {
                    try { go.await(); if (b.trySetCount(vb2, base + 20)) wins.incrementAndGet(); }
                    catch (Throwable e) { err.set(e); }
                });
                ta.start(); tb.start(); ta.join(10_000); tb.join(10_000);
                check(err.get() == null, "trySetCount race failed: %s", err.get());
                check(wins.get() == 1, "round %d: %d of 2 concurrent trySetCount(same version) succeeded",
                        round, wins.get());
                waitFor("both instances to agree after the race", 5_000,
                        () -> a.getCount() == b.getCount() && a.getCount() != base);
            }
            s.ok("shared_count");
        } finally {
            closeQuietly(a);
            closeQuietly(b);
        }
    }

    // ---------------------------------------------------------------- CuratorCache

    static void curatorCache(Steps s) throws Exception {
        String path = root + "/cache";
        CuratorFramework c = newClient();
        c.create().forPath(path, bytes("root"));
        c.create().forPath(path + "/x", bytes("x0"));
        c.create().forPath(path + "/x/y", bytes("y0"));
        c.create().forPath(path + "/w", bytes("w0"));

        BlockingQueue<String> events = new LinkedBlockingQueue<>();
        CountDownLatch initialized = new CountDownLatch(1);
        AtomicInteger initialCreates = new AtomicInteger();
        CuratorCacheListener listener = CuratorCacheListener.builder()
                .forCreates(n -> {
                    if (initialized.getCount() > 0) initialCreates.incrementAndGet();
                    else events.add("create " + n.getPath() + " " + str(n.getData()));
                })
                .forChanges((o, n) -> events.add("change " + n.getPath() + " " + str(o.getData()) + "->" + str(n.getData())))
                .forDeletes(o -> events.add("delete " + o.getPath()))
                .forInitialized(initialized::countDown)
                .build();
        CuratorCache cache = CuratorCache.build(c, path);
        try {
            cache.listenable().addListener(listener);
            cache.start();
            check(initialized.await(10, TimeUnit.SECONDS), "CuratorCache not initialized within 10 s");
            check(cache.size() == 4, "initial cache has %d nodes, expected 4 (root, x, x/y, w): %s",
                    cache.size(), cache.stream().map(ChildData::getPath).sorted().toArray());
            check(initialCreates.get() == 4, "%d create events before initialized, expected 4", initialCreates.get());
            check("y0".equals(cache.get(path + "/x/y").map(d -> str(d.getData())).orElse(null)),
                    "cached data of x/y is %s", cache.get(path + "/x/y").map(d -> str(d.getData())).orElse("missing"));
            Stat st = c.checkExists().forPath(path + "/x/y");
            check(cache.get(path + "/x/y").get().getStat().equals(st), "cached stat of x/y differs from the server's");
            s.ok("curator_cache_initial");

            // descendants at several depths, one at a time: CuratorCache re-reads a
            // node when its event arrives, so back-to-back changes may be coalesced
            List<String> got = new ArrayList<>();
            List<String> want = new ArrayList<>();
            Object[][] steps = {
                {"create", path + "/x/y/z", "z0", "create " + path + "/x/y/z z0"},
                {"set", path + "/x", "x1", "change " + path + "/x x0->x1"},
                {"set", path + "/x/y/z", "z1", "change " + path + "/x/y/z z0->z1"},
                {"delete", path + "/x/y/z", null, "delete " + path + "/x/y/z"},
                {"delete", path + "/w", null, "delete " + path + "/w"},
                {"create", path + "/v", "v0", "create " + path + "/v v0"},
                {"set", path, "root1", "change " + path + " root->root1"},
            };
            for (Object[] step : steps) {
                String op = (String) step[0], p = (String) step[1], data = (String) step[2];
                if (op.equals("create")) c.create().forPath(p, bytes(data));
                else if (op.equals("set")) c.setData().forPath(p, bytes(data));
                else c.delete().forPath(p);
                want.add((String) step[3]);
                String e = events.poll(5, TimeUnit.SECONDS);
                if (e == null) {
                    throw new CheckFailed(String.format(
                            "no CuratorCache event within 5 s after %s %s%n  got so far: %s%n  expected:   %s",
                            op, p, got, want));
                }
                got.add(e);
                check(got.equals(want), "CuratorCache events%n  got:      %s%n  expected: %s", got, want);
            }
            // anything extra (spurious events)?
            String extra;
            while ((extra = events.poll(300, TimeUnit.MILLISECONDS)) != null) got.add(extra);
            check(got.equals(want), "CuratorCache events%n  got:      %s%n  expected: %s", got, want);
            check(!cache.get(path + "/x/y/z").isPresent() && !cache.get(path + "/w").isPresent(),
                    "deleted nodes still in the cache");
            check(cache.size() == 4, "cache has %d nodes at the end, expected 4", cache.size());
            check("x1".equals(str(cache.get(path + "/x").get().getData())), "cache has stale data for x");
            s.ok("curator_cache_events");
        } finally {
            closeQuietly(cache);
        }
    }

    // ---------------------------------------------------------------- TTL nodes

    static void ttl(Steps s) throws Exception {
        CuratorFramework c = newClient();
        String path = root + "/ttl";
        long ttlMs = 1500;
        long t0 = System.nanoTime();
        Stat created = new Stat();
        c.create().withTtl(ttlMs).storingStatIn(created).withMode(CreateMode.PERSISTENT_WITH_TTL)
                .forPath(path, bytes("ttl"));
        Stat st = c.checkExists().forPath(path);
        check(st != null, "TTL node missing right after create");
        long owner = st.getEphemeralOwner();
        // ZooKeeper keeps the TTL encoded in the stored ephemeralOwner but shows
        // clients 0 (DataNode.copyStat: only NORMAL ephemerals expose an owner)
        check(owner == 0, "TTL node's ephemeralOwner is %s, expected 0 (ZooKeeper hides the TTL encoding %s)",
                hex(owner), hex(EphemeralType.TTL.toEphemeralOwner(ttlMs)));
        check(created.getEphemeralOwner() == owner, "create's Stat has ephemeralOwner %s, exists() %s",
                hex(created.getEphemeralOwner()), hex(owner));
        waitFor("the TTL node to be reaped", ttlMs + 4 * reapIntervalMs + 5_000, () -> !exists(c, path));
        long elapsed = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        check(elapsed >= ttlMs - 100, "TTL node (ttl %d ms) reaped after only %d ms", ttlMs, elapsed);
        System.err.printf("ttl node (ttl %d ms) gone after %d ms%n", ttlMs, elapsed);
        s.ok("ttl_node");
    }

    // PersistentTtlNode: a container with a TTL "touch" child kept alive
    static void persistentTtl(Steps s) throws Exception {
        CuratorFramework c = newClient();
        String ppath = root + "/pttl";
        long pttl = 1000;
        PersistentTtlNode node = new PersistentTtlNode(c, ppath, pttl, bytes("p"));
        try {
            node.start();
            check(node.waitForInitialCreate(5, TimeUnit.SECONDS), "PersistentTtlNode not created within 5 s");
            waitFor("the touch child", 5_000, () -> exists(c, ppath + "/touch"));
            Thread.sleep(2 * pttl + 2 * reapIntervalMs);
            check(exists(c, ppath) && exists(c, ppath + "/touch"),
                    "PersistentTtlNode (or its touch child) vanished while being kept alive");
        } finally {
            node.close();
        }
        long closed = System.nanoTime();
        waitFor("the touch child to expire after close", pttl + 4 * reapIntervalMs + 5_000,
                () -> !exists(c, ppath + "/touch"));
        waitFor("the PersistentTtlNode container to be reaped", 4 * reapIntervalMs + 5_000,
                () -> !exists(c, ppath));
        System.err.printf("PersistentTtlNode gone %d ms after close%n",
                TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - closed));
        s.ok("persistent_ttl_node");
    }

    // ---------------------------------------------------------------- containers

    static void containers(Steps s) throws Exception {
        CuratorFramework c = newClient();
        String base = root + "/cont";
        c.create().forPath(base);
        String a = base + "/a", b = a + "/b", leaf = b + "/c";
        c.create().creatingParentContainersIfNeeded().forPath(leaf, bytes("leaf"));
        for (String p : new String[] {a, b, leaf}) check(exists(c, p), "%s missing after create", p);
        Stat sa = c.checkExists().forPath(a), sb = c.checkExists().forPath(b), sl = c.checkExists().forPath(leaf);
        // ZooKeeper shows clients ephemeralOwner 0 for containers (the stored marker
        // is hidden); that they are containers is checked by the reaping below
        check(sa.getEphemeralOwner() == 0 && sb.getEphemeralOwner() == 0,
                "parents' ephemeralOwner are %s / %s, expected 0 (ZooKeeper hides the container marker %s)",
                hex(sa.getEphemeralOwner()), hex(sb.getEphemeralOwner()), hex(EphemeralType.CONTAINER_EPHEMERAL_OWNER));
        check(sl.getEphemeralOwner() == 0, "the leaf (persistent) has ephemeralOwner %s", hex(sl.getEphemeralOwner()));
        // containers with children survive several reaper passes
        Thread.sleep(3 * reapIntervalMs);
        check(exists(c, a) && exists(c, b), "a non-empty container was reaped");
        // an empty, never-used container survives too (maxNeverUsedIntervalMs=0)
        String never = base + "/never";
        c.create().withMode(CreateMode.CONTAINER).forPath(never);
        long t0 = System.nanoTime();
        c.delete().forPath(leaf);
        waitFor("container " + b + " to be reaped after its only child was deleted",
                4 * reapIntervalMs + 5_000, () -> !exists(c, b));
        waitFor("container " + a + " to be reaped after " + b + " was", 4 * reapIntervalMs + 5_000,
                () -> !exists(c, a));
        System.err.printf("container parents gone %d ms after the leaf was deleted%n",
                TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
        check(exists(c, base), "the persistent grandparent %s was deleted", base);
        check(exists(c, never), "an empty container that never had a child was reaped");
        s.ok("container_parents");
    }

    // ---------------------------------------------------------------- main

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: CuratorCheck host:port [container-check-interval-ms]");
            System.exit(2);
        }
        hosts = args[0];
        if (args.length > 1) reapIntervalMs = Long.parseLong(args[1]);
        root = "/curator-check-" + UUID.randomUUID().toString().substring(0, 8);

        Thread watchdog = new Thread(() -> {
            try {
                Thread.sleep(WATCHDOG_MS);
                System.out.println("FAIL watchdog: CuratorCheck still running after " + WATCHDOG_MS + " ms");
                System.out.flush();
                for (java.util.Map.Entry<Thread, StackTraceElement[]> e : Thread.getAllStackTraces().entrySet()) {
                    System.err.println("thread " + e.getKey().getName());
                    for (StackTraceElement el : e.getValue()) System.err.println("    at " + el);
                }
                Runtime.getRuntime().halt(3);
            } catch (InterruptedException ignore) { }
        }, "watchdog");
        watchdog.setDaemon(true);
        watchdog.start();

        long t0 = System.nanoTime();
        CuratorFramework admin = newClient();
        admin.create().forPath(root);

        group(CuratorCheck::leaderLatch, "leader_latch_single_leader", "leader_latch_takeover");
        group(CuratorCheck::mutex, "mutex_exclusion", "mutex_reentrant");
        group(CuratorCheck::barrier, "barrier");
        group(CuratorCheck::sharedCount, "shared_count");
        group(CuratorCheck::curatorCache, "curator_cache_initial", "curator_cache_events");
        group(CuratorCheck::ttl, "ttl_node");
        group(CuratorCheck::persistentTtl, "persistent_ttl_node");
        group(CuratorCheck::containers, "container_parents");

        try {
            admin.delete().deletingChildrenIfNeeded().forPath(root);
        } catch (Exception e) {
            System.err.println("cleanup of " + root + " failed: " + e);
        }
        synchronized (clients) {
            for (CuratorFramework c : clients) closeQuietly(c);
        }
        System.err.printf("CuratorCheck: %d failure(s) in %.1f s%n", failures, (System.nanoTime() - t0) / 1e9);
        System.exit(failures == 0 ? 0 : 1);
    }
}
