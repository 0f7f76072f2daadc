"""kazoo's recipes, each run with several clients (separate sessions)."""

import threading
import time

import pytest
from kazoo.exceptions import LockTimeout

from conftest import wait_until

ZK_TICK_TIME = 2000
N = 3


@pytest.fixture
def clients(make_client):
    return [make_client() for _ in range(N)]


def run_threads(targets, timeout=20):
    errors = []

    def wrap(fn):
        def run():
            try:
                fn()
            except BaseException as e:  # noqa: B902
                errors.append(e)
        return run

    threads = [threading.Thread(target=wrap(t), daemon=True) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "thread still running"
    if errors:
        raise errors[0]


def test_lock_mutual_exclusion(clients, base):
    path = base + "/lock"
    inside = []
    overlaps = []
    order = []

    def worker(i, c):
        def run():
            lock = c.Lock(path, "worker-%d" % i)
            for _ in range(3):
                with lock:
                    inside.append(i)
                    if len(inside) > 1:
                        overlaps.append(list(inside))
                    order.append(i)
                    time.sleep(0.01)
                    inside.remove(i)
        return run

    run_threads([worker(i, c) for i, c in enumerate(clients)])
    assert overlaps == []
    assert sorted(order) == sorted(list(range(N)) * 3)
    # all lock nodes are gone
    assert clients[0].get_children(path) == []


def test_lock_timeout_contenders_and_release(clients, base):
    a, b, _ = clients
    la = a.Lock(base + "/lock", "alice")
    lb = b.Lock(base + "/lock", "bob")
    assert la.acquire(timeout=5)
    assert la.is_acquired
    assert lb.acquire(blocking=False) is False
    with pytest.raises(LockTimeout):
        lb.acquire(timeout=0.3)
    assert la.contenders() == ["alice"]
    got = threading.Event()

    def wait_b():
        lb.acquire(timeout=10)
        got.set()

    t = threading.Thread(target=wait_b, daemon=True)
    t.start()
    wait_until(lambda: lb.contenders() == ["alice", "bob"], msg="bob queued")
    assert not got.is_set()
    la.release()
    assert got.wait(5)
    assert lb.contenders() == ["bob"]
    lb.release()


def test_lock_released_when_holder_session_closes(clients, base):
    a, b, _ = clients
    la = a.Lock(base + "/lock")
    la.acquire()
    lb = b.Lock(base + "/lock")
    got = threading.Event()
    threading.Thread(target=lambda: (lb.acquire(timeout=10), got.set()), daemon=True).start()
    time.sleep(0.2)
    assert not got.is_set()
    a.stop()  # its ephemeral lock node goes with the session
    assert got.wait(5)
    lb.release()


def test_read_write_lock(clients, base):
    a, b, c = clients
    ra = a.ReadLock(base + "/rw")
    rb = b.ReadLock(base + "/rw")
    wc = c.WriteLock(base + "/rw")
    assert ra.acquire(timeout=5)
    assert rb.acquire(timeout=5)  # readers share
    assert wc.acquire(blocking=False) is False
    ra.release()
    rb.release()
    assert wc.acquire(timeout=5)
    assert ra.acquire(blocking=False) is False
    wc.release()
    assert ra.acquire(timeout=5)
    ra.release()


def test_semaphore(clients, base):
    a, b, c = clients
    sa = a.Semaphore(base + "/sem", max_leases=2)
    sb = b.Semaphore(base + "/sem", max_leases=2)
    sc = c.Semaphore(base + "/sem", max_leases=2)
    assert sa.acquire(timeout=5)
    assert sb.acquire(timeout=5)
    assert sc.acquire(blocking=False) is False
    assert len(sa.lease_holders()) == 2
    sa.release()
    assert sc.acquire(timeout=5)
    sb.release()
    sc.release()


def test_election(clients, base):
    path = base + "/election"
    leaders = []
    lock = threading.Lock()
    stop = {i: threading.Event() for i in range(N)}
    killed = set()
    elections = [c.Election(path, "node-%d" % i) for i, c in enumerate(clients)]

    def lead(i):
        def fn():
            with lock:
                leaders.append(i)
                # a leader whose session is being killed no longer counts
                concurrent = [x for x in leaders if not stop[x].is_set() and x not in killed]
                assert len(concurrent) == 1, concurrent
            stop[i].wait(10)
        return fn

    errors = []

    def runner(i):
        try:
            elections[i].run(lead(i))
        except Exception as e:  # the killed client cannot release its node
            if i not in killed:
                errors.append(e)

    threads = [threading.Thread(target=runner, args=(i,), daemon=True) for i in range(N)]
    for t in threads:
        t.start()
    wait_until(lambda: len(leaders) == 1, msg="a leader")
    wait_until(lambda: len(elections[0].contenders()) == N, msg="all contenders")
    first = leaders[0]
    assert elections[0].contenders()[0] == "node-%d" % first
    time.sleep(0.2)
    assert len(leaders) == 1  # nobody else leads meanwhile
    # the leader steps down: exactly one other takes over
    stop[first].set()
    wait_until(lambda: len(leaders) == 2, msg="second leader")
    second = leaders[1]
    assert second != first
    # the second leader's session dies: the third one leads
    killed.add(second)
    clients[second].stop()
    stop[second].set()
    wait_until(lambda: len(leaders) == 3, msg="third leader")
    assert sorted(leaders) == list(range(N))
    stop[leaders[2]].set()
    for t in threads:
        t.join(5)
    assert errors == []


def test_counter(clients, base):
    path = base + "/counter"
    counters = [c.Counter(path) for c in clients]

    def inc(counter):
        def fn():
            for _ in range(10):
                counter.__add__(1)  # `counter += 1` is a retried read-modify-write
        return fn

    run_threads([inc(c) for c in counters])
    assert counters[0].value == N * 10
    counters[1] -= 5
    assert counters[2].value == N * 10 - 5
    fc = clients[0].Counter(base + "/fcounter", default=0.0)
    fc += 1.5
    assert clients[1].Counter(base + "/fcounter", default=0.0).value == 1.5


def test_barrier(clients, base):
    a, b, c = clients
    barrier = a.Barrier(base + "/barrier")
    barrier.create()
    passed = []

    def waiter(cl):
        def fn():
            assert cl.Barrier(base + "/barrier").wait(10)
            passed.append(cl)
        return fn

    threads = [threading.Thread(target=waiter(x), daemon=True) for x in (b, c)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    assert passed == []
    assert b.Barrier(base + "/barrier").wait(0.1) is False
    barrier.remove()
    for t in threads:
        t.join(5)
    assert len(passed) == 2


def test_double_barrier(clients, base):
    path = base + "/dbarrier"
    entered = []
    left = []
    lock = threading.Lock()

    def participant(i, c):
        def fn():
            db = c.DoubleBarrier(path, N, identifier="p%d" % i)
            db.enter()
            with lock:
                entered.append((i, time.monotonic()))
            time.sleep(0.05 * i)
            db.leave()
            with lock:
                left.append((i, time.monotonic()))
        return fn

    # start them one by one: nobody enters before the last one arrives
    threads = []
    for i, c in enumerate(clients):
        t = threading.Thread(target=participant(i, c), daemon=True)
        t.start()
        threads.append(t)
        if i < N - 1:
            time.sleep(0.2)
            assert entered == []
    for t in threads:
        t.join(15)
    assert sorted(i for i, _ in entered) == list(range(N))
    assert sorted(i for i, _ in left) == list(range(N))
    # nobody left before everybody had entered
    assert min(t for _, t in left) >= max(t for _, t in entered)
    assert clients[0].get_children(path) == []


def test_queue(clients, base):
    a, b, c = clients
    qa = a.Queue(base + "/queue")
    qb = b.Queue(base + "/queue")
    for i in range(5):
        qa.put(b"item-%d" % i)
    qb.put(b"urgent", priority=10)
    qb.put(b"first", priority=1)
    assert len(qb) == 7
    got = [qb.get() for _ in range(7)]
    # lower priority value first (default 100), FIFO within a priority
    assert got == [b"first", b"urgent"] + [b"item-%d" % i for i in range(5)]
    assert c.Queue(base + "/queue").get() is None


def test_queue_priorities_exact(clients, base):
    a, b, _ = clients
    q = a.Queue(base + "/pq")
    q.put(b"low", priority=90)
    q.put(b"high", priority=10)
    q.put(b"mid", priority=50)
    q.put(b"high2", priority=10)
    q2 = b.Queue(base + "/pq")
    assert [q2.get() for _ in range(4)] == [b"high", b"high2", b"mid", b"low"]


def test_queue_concurrent_consumers_get_each_item_once(clients, base):
    producer = clients[0].Queue(base + "/cq")
    items = [b"%03d" % i for i in range(30)]
    for item in items:
        producer.put(item)
    got = []
    lock = threading.Lock()

    def consumer(c):
        def fn():
            q = c.Queue(base + "/cq")
            while True:
                item = q.get()
                if item is None:
                    return
                with lock:
                    got.append(item)
        return fn

    run_threads([consumer(c) for c in clients[1:]])
    assert sorted(got) == items


def test_locking_queue(clients, base):
    a, b, c = clients
    qa = a.LockingQueue(base + "/lq")
    qb = b.LockingQueue(base + "/lq")
    qc = c.LockingQueue(base + "/lq")
    qa.put(b"one")
    qa.put(b"two")
    qa.put(b"zero", priority=1)
    assert len(qb) == 3
    assert qb.get(timeout=5) == b"zero"
    # b holds "zero": c gets the next one
    assert qc.get(timeout=5) == b"one"
    assert qb.holds_lock()
    # b gives "zero" back (release without consume), c consumes "one"
    assert qb.release()
    assert qc.consume()
    assert len(qa) == 2
    assert qa.get(timeout=5) == b"zero"
    assert qa.consume()
    assert qb.get(timeout=5) == b"two"
    assert qb.consume()
    assert len(qc) == 0
    assert qc.get(timeout=0.3) is None


def test_locking_queue_item_of_dead_session_is_released(clients, base):
    a, b, _ = clients
    qa = a.LockingQueue(base + "/lq")
    qa.put(b"job")
    assert qa.get(timeout=5) == b"job"
    qb = b.LockingQueue(base + "/lq")
    assert qb.get(timeout=0.3) is None  # locked by a
    a.stop()  # a dies without consuming
    assert qb.get(timeout=5) == b"job"
    assert qb.consume()


def test_party(clients, base):
    a, b, c = clients
    pa = a.Party(base + "/party", "alice")
    pb = b.Party(base + "/party", "bob")
    watcher = c.Party(base + "/party")
    assert len(watcher) == 0
    pa.join()
    pb.join()
    assert sorted(watcher) == ["alice", "bob"]
    assert len(watcher) == 2
    pa.leave()
    assert list(watcher) == ["bob"]
    b.stop()  # a member's session ends: it leaves
    assert list(watcher) == []


def test_shallow_party(clients, base):
    a, b, c = clients
    pa = a.ShallowParty(base + "/sparty", "alice")
    pb = b.ShallowParty(base + "/sparty", "bob")
    watcher = c.ShallowParty(base + "/sparty")
    pa.join()
    pb.join()
    assert sorted(watcher) == ["alice", "bob"]
    assert len(watcher) == 2
    pb.leave()
    assert list(watcher) == ["alice"]


def test_children_watch(clients, base):
    a, b, _ = clients
    path = a.create(base + "/cw")
    seen = []
    done = threading.Event()

    @a.ChildrenWatch(path)
    def watcher(children):
        seen.append(sorted(children))
        if "stop" in children:
            done.set()
            return False  # stop watching

    wait_until(lambda: seen == [[]], msg="initial call")
    b.create(path + "/x")
    wait_until(lambda: seen[-1] == ["x"], msg="x")
    b.create(path + "/y")
    wait_until(lambda: seen[-1] == ["x", "y"], msg="x,y")
    b.delete(path + "/x")
    wait_until(lambda: seen[-1] == ["y"], msg="y")
    b.create(path + "/stop")
    assert done.wait(5)
    n = len(seen)
    b.create(path + "/after")
    time.sleep(0.3)
    assert len(seen) == n  # stopped


def test_data_watch(clients, base):
    a, b, _ = clients
    path = base + "/dw"
    seen = []

    @a.DataWatch(path)
    def watcher(data, stat):
        seen.append((data, stat.version if stat else None))

    wait_until(lambda: seen == [(None, None)], msg="initial call (missing node)")
    b.create(path, b"v0")
    wait_until(lambda: seen[-1] == (b"v0", 0), msg="created")
    b.set(path, b"v1")
    wait_until(lambda: seen[-1] == (b"v1", 1), msg="changed")
    b.delete(path)
    wait_until(lambda: seen[-1] == (None, None), msg="deleted")
    b.create(path, b"again")
    wait_until(lambda: seen[-1] == (b"again", 0), msg="re-created")
