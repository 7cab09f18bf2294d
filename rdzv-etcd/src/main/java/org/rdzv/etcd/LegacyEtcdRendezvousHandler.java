package org.rdzv.etcd;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.lang.System.Logger.Level;
import java.time.Duration;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import org.rdzv.api.RendezvousClosedException;
import org.rdzv.api.RendezvousConnectionException;
import org.rdzv.api.RendezvousException;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousInfo;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousStateException;
import org.rdzv.api.RendezvousStoreInfo;
import org.rdzv.api.RendezvousTimeoutException;

/**
 * PyTorch's legacy {@code etcd} rendezvous ({@code etcd_rendezvous.py}) on etcd's v2 API, with the
 * same keys, TTLs and JSON states, so Java and PyTorch nodes can share one rendezvous.
 *
 * <p>Under {@code <etcd_prefix>/run_<run_id>/rdzv}: {@code version_counter}, {@code active_version}
 * (the JSON state: {@code setup} → {@code joinable} → {@code frozen} → {@code final}, or {@code
 * closed}), and per version {@code v_<N>/rank_<r>} keep-alive keys and the {@code v_<N>/kv} store.
 * Ranks are the join order. Waits are v2 watches. Differences from PyTorch (all invisible to its
 * nodes): no random pause before each compare-and-set (only after a lost one), no one-second pause
 * after a wait that already watched for the change, closing a run with no state yet writes a {@code
 * closed} state, and a run that cannot reach etcd ends with a connection error (not a timeout) at
 * its deadline.
 */
final class LegacyEtcdRendezvousHandler implements RendezvousHandler {
  private static final System.Logger LOG =
      System.getLogger(LegacyEtcdRendezvousHandler.class.getName());

  static final int DEFAULT_TIMEOUT_SECONDS = 600;
  static final int DEFAULT_LAST_CALL_TIMEOUT_SECONDS = 30;
  static final String DEFAULT_PREFIX = "/torchelastic/p2p";
  static final int SETUP_TTL = 5;
  static final int FROZEN_TTL = 10;
  static final int JOINABLE_EPHEMERAL_TTL = 10;
  static final int WORKER_KEEPALIVE_TTL = 10;
  static final int RUN_ID_SUBROOT_TTL = 7200;

  /**
   * One scheduler thread for every handler's TTL refreshes; the refreshes run on virtual threads.
   */
  private static final ScheduledExecutorService RENEWALS =
      Executors.newSingleThreadScheduledExecutor(
          r -> Thread.ofPlatform().daemon().name("rdzv-etcd-lease-renewal").unstarted(r));

  private final EtcdV2Client client;
  private final String prefix;
  private final String runId;
  private final int minNodes;
  private final int maxNodes;
  private final Duration timeout;
  private final Duration lastCallTimeout;
  private final String localAddr;
  private final ReentrantLock lock = new ReentrantLock();
  private final ScheduledFuture<?> runLease;
  private volatile ScheduledFuture<?> rankLease;
  private long deadline;

  /**
   * A running average of how long one compare-and-set takes, to size the pause after a lost one.
   */
  private volatile long casNanos = 2_000_000;

  /** The state text this node last waited on, to tell a moving state from a still one. */
  private String lastSeenText;

  /** Signals a retry of the whole attempt after PyTorch's one-second pause. */
  private static final class RetryableFailure extends RuntimeException {
    private static final long serialVersionUID = 1L;
    final boolean alreadyWaited;

    RetryableFailure(String message, boolean alreadyWaited) {
      super(message, null, false, false);
      this.alreadyWaited = alreadyWaited;
    }
  }

  /** Signals a retry of the whole attempt at once. */
  private static final class RetryImmediately extends RuntimeException {
    private static final long serialVersionUID = 1L;

    RetryImmediately(String message) {
      super(message, null, false, false);
    }
  }

  /** The state key read: the parsed JSON, its exact text and the etcd index of the answer. */
  private record Active(ObjectNode state, String text, long etcdIndex) {
    String status() {
      return state.path("status").asText();
    }

    String version() {
      return state.path("version").asText(null);
    }

    boolean is(String status, String version) {
      return status.equals(status()) && version.equals(version());
    }
  }

  LegacyEtcdRendezvousHandler(EtcdV2Client client, RendezvousParameters params) {
    this.client = client;
    String p = params.getString("etcd_prefix").orElse(DEFAULT_PREFIX);
    this.prefix = p.endsWith("/") ? p : p + "/";
    this.runId = params.runId();
    this.localAddr = params.localAddr();
    this.minNodes = params.minNodes();
    this.maxNodes = params.maxNodes();
    this.timeout = Duration.ofSeconds(params.getAsInt("timeout", DEFAULT_TIMEOUT_SECONDS));
    this.lastCallTimeout =
        Duration.ofSeconds(params.getAsInt("last_call_timeout", DEFAULT_LAST_CALL_TIMEOUT_SECONDS));
    // Every step creates only if missing, so repeating one after a timeout (a cluster member
    // that just lost its leader) is harmless.
    for (int attempt = 1; ; attempt++) {
      try {
        if (!prefix.equals("/")) {
          createDirIfMissing(prefix, null);
        }
        createDirIfMissing(path(""), RUN_ID_SUBROOT_TTL);
        createDirIfMissing(path("/rdzv"), null);
        try {
          client.put(
              path("/rdzv/version_counter"), EtcdV2Client.form("value", "0", "prevExist", "false"));
        } catch (EtcdV2Exception e) {
          if (!e.is(EtcdV2Exception.NODE_EXIST)) {
            throw e;
          }
        }
        break;
      } catch (EtcdV2Exception e) {
        if (e.kind() != EtcdV2Exception.Kind.UNAVAILABLE || attempt >= 3) {
          throw translate(e);
        }
      }
    }
    this.runLease = renewLease(path(""), RUN_ID_SUBROOT_TTL);
  }

  @Override
  public String backend() {
    return "etcd";
  }

  @Override
  public String runId() {
    return runId;
  }

  @Override
  public RendezvousInfo nextRendezvous() {
    lock.lock();
    try {
      long[] result = barrier();
      String version = Long.toString(result[0]);
      String kv = path("/rdzv/v_" + version + "/kv");
      try {
        createDirIfMissing(kv, null);
      } catch (EtcdV2Exception e) {
        throw translate(e);
      }
      EtcdV2Store store = new EtcdV2Store(client, kv, EtcdV2Store.DEFAULT_TIMEOUT);
      int rank = (int) result[1];
      RendezvousStoreInfo bootstrap = null;
      if (rank == 0) {
        // PyTorch 2.x's handler: rank 0 publishes its address and a free port (on which worker
        // rank 0 hosts: use_agent_store is false here) in the round's store, and 2.x ranks read
        // them before they return. 1.13's agent 0 publishes the same keys after its handler
        // returns; so other ranks do not wait for them here, their agents read them.
        try {
          bootstrap = RendezvousStoreInfo.build(0, store, localAddr, null);
        } catch (org.rdzv.api.StoreException e) {
          throw new RendezvousConnectionException(
              "The connection to etcd has failed. See inner exception for details.", e);
        }
      }
      return new RendezvousInfo(store, rank, (int) result[2], bootstrap, result[0]);
    } finally {
      lock.unlock();
    }
  }

  @Override
  public boolean isClosed() {
    return readState().map(a -> "closed".equals(a.status())).orElse(false);
  }

  @Override
  public int numNodesWaiting() {
    return readState()
        .filter(a -> "final".equals(a.status()))
        .map(a -> a.state().path("num_workers_waiting").asInt(0))
        .orElse(0);
  }

  /** The current JSON state text of {@code active_version}, or empty when there is none. */
  java.util.Optional<String> stateText() {
    return readState().map(Active::text);
  }

  @Override
  public void setClosed() {
    try {
      for (int attempt = 0; ; attempt++) {
        try {
          java.util.Optional<Active> current = readStateRaw();
          if (current.isEmpty()) {
            client.put(
                path("/rdzv/active_version"),
                EtcdV2Client.form("value", "{\"status\": \"closed\"}", "prevExist", "false"));
            return;
          }
          Active active = current.get();
          if ("closed".equals(active.status())) {
            return;
          }
          active.state().put("status", "closed");
          cas(active, active.state(), null);
          return;
        } catch (EtcdV2Exception e) {
          if (!e.compareFailed()) {
            throw e;
          }
          LOG.log(Level.DEBUG, "run {0}: closing lost a compare-and-set, retrying", runId);
          EtcdV2Store.backOff(attempt);
        }
      }
    } catch (EtcdV2Exception e) {
      throw translate(e);
    }
  }

  @Override
  public boolean shutdown() {
    try {
      setClosed();
      return true;
    } catch (RendezvousException | org.rdzv.api.StoreException e) {
      LOG.log(Level.WARNING, "Shutdown failed. Error occurred: {0}", e.getMessage());
      return false;
    } finally {
      close();
    }
  }

  /**
   * Stops refreshing this node's keep-alive key: the others see it gone when its TTL ({@value
   * #WORKER_KEEPALIVE_TTL} s) expires, which is how PyTorch's legacy rendezvous notices a lost
   * node. The rendezvous stays open.
   */
  @Override
  public void leave() {
    ScheduledFuture<?> rank = rankLease;
    if (rank != null) {
      rank.cancel(false);
    }
  }

  /** Stops refreshing this node's TTLs; the HTTP client is shared and needs no closing. */
  @Override
  public void close() {
    runLease.cancel(false);
    leave();
  }

  // ---------------------------------------------------------------- the barrier

  /** Returns {version, rank, world size}. */
  private long[] barrier() {
    deadline = System.nanoTime() + timeout.toNanos();
    EtcdV2Exception lastFailure = null;
    while (true) {
      if (System.nanoTime() - deadline > 0) {
        if (lastFailure != null && lastFailure.kind() == EtcdV2Exception.Kind.UNAVAILABLE) {
          throw translate(lastFailure);
        }
        throw new RendezvousTimeoutException("The etcd rendezvous of run " + runId + " timed out.");
      }
      LOG.log(Level.DEBUG, "run {0}: attempting to join the next rendezvous", runId);
      ScheduledFuture<?> rank = rankLease;
      if (rank != null) {
        rank.cancel(false);
        rankLease = null;
      }
      try {
        return initPhase();
      } catch (RetryImmediately e) {
        LOG.log(Level.DEBUG, "run {0}: {1}", runId, e.getMessage());
      } catch (RetryableFailure e) {
        LOG.log(Level.DEBUG, "run {0}: {1}", runId, e.getMessage());
        if (!e.alreadyWaited) {
          pause(Duration.ofSeconds(1));
        }
      } catch (EtcdV2Exception e) {
        if (e.kind() == EtcdV2Exception.Kind.INTERRUPTED) {
          throw translate(e);
        }
        lastFailure = e;
        LOG.log(
            Level.INFO,
            "run {0}: rendezvous attempt failed, will retry: {1}",
            runId,
            e.getMessage());
        pause(Duration.ofSeconds(1));
      }
    }
  }

  private long[] initPhase() {
    Active active;
    try {
      active = tryCreateRendezvous();
      LOG.log(Level.DEBUG, "run {0}: new rendezvous state created: {1}", runId, active.text());
    } catch (EtcdV2Exception e) {
      if (!e.is(EtcdV2Exception.NODE_EXIST)) {
        throw e;
      }
      active = getState();
      LOG.log(
          Level.DEBUG, "run {0}: observed existing rendezvous state: {1}", runId, active.text());
    }
    switch (active.status()) {
      case "closed" ->
          throw new RendezvousClosedException("The rendezvous of run " + runId + " is closed.");
      case "joinable" -> {
        return joinPhase(active.version());
      }
      case "final" -> {
        handleExistingRendezvous(active.version());
        throw new RetryImmediately("the rendezvous changed while this node waited");
      }
      default -> {
        waitForStateChange(active.etcdIndex() + 1, null);
        throw new RetryableFailure("observed a transitional state, retrying", true);
      }
    }
  }

  private Active tryCreateRendezvous() {
    EtcdV2Client.Result setup =
        client.put(
            path("/rdzv/active_version"),
            EtcdV2Client.form(
                "value", "{\"status\": \"setup\"}",
                "prevExist", "false",
                "ttl", Integer.toString(SETUP_TTL)));
    String version;
    try {
      EtcdV2Client.Node counter = client.get(path("/rdzv/version_counter"), false).node();
      version = Long.toString(Long.parseLong(counter.value().strip()) + 1);
      client.put(
          path("/rdzv/version_counter"),
          EtcdV2Client.form(
              "value",
              version,
              "prevExist",
              "true",
              "prevIndex",
              Long.toString(counter.modifiedIndex())));
    } catch (EtcdV2Exception e) {
      if (e.keyNotFound() || e.is(EtcdV2Exception.TEST_FAILED)) {
        throw new RendezvousException(
            "Unexpected state of EtcdRendezvousHandler, worker needs to die.");
      }
      throw e;
    } catch (NumberFormatException e) {
      throw new RendezvousStateException(
          "The etcd version counter of run " + runId + " is not a number.", e);
    }
    client.put(path("/rdzv/v_" + version), EtcdV2Client.form("dir", "true", "prevExist", "false"));
    ObjectNode joinable = PythonJson.object();
    joinable.put("status", "joinable");
    joinable.put("version", version);
    joinable.putArray("participants");
    String text = PythonJson.dumps(joinable);
    EtcdV2Client.Result result =
        client.put(
            path("/rdzv/active_version"),
            EtcdV2Client.form("value", text, "prevValue", setup.node().value()));
    return new Active(joinable, text, result.etcdIndex());
  }

  private long[] joinPhase(String version) {
    Joined joined = joinRendezvous(version);
    Active active = joined.active();
    int rank = joined.rank();
    LOG.log(Level.DEBUG, "run {0}: joined version {1} as rank {2}", runId, version, rank);
    if (rank == minNodes - 1 && "joinable".equals(active.status())) {
      LOG.log(Level.DEBUG, "run {0}: rank {1} owns the join last call", runId, rank);
      handleJoinLastCall(version, System.nanoTime() + lastCallTimeout.toNanos());
    }
    waitForPeers(version);
    return confirmPhase(version, rank);
  }

  /** The state this node's join wrote, and the rank it took. */
  private record Joined(Active active, int rank) {}

  private Joined joinRendezvous(String version) {
    for (int attempt = 0; ; attempt++) {
      Active active = getState();
      if (!"joinable".equals(active.status())) {
        throw new RetryableFailure(
            "Rendezvous state became non-joinable before we could join. Must join next one.",
            false);
      }
      if (!version.equals(active.version())) {
        throw new RetryImmediately("Rendezvous version changed. Must try join the new one.");
      }
      ArrayNode participants = participants(active.state());
      if (participants.size() >= maxNodes) {
        throw new RendezvousStateException(
            "The joinable etcd rendezvous of run " + runId + " is already full: " + active.text());
      }
      int rank = participants.size();
      int contenders = maxNodes - rank;
      participants.add(rank);
      Integer ttl = null;
      if (participants.size() == maxNodes) {
        active.state().put("status", "frozen");
        active.state().putArray("keep_alives");
        ttl = FROZEN_TTL;
      } else if (participants.size() >= minNodes) {
        ttl = JOINABLE_EPHEMERAL_TTL;
      }
      try {
        return new Joined(cas(active, active.state(), ttl), rank);
      } catch (EtcdV2Exception e) {
        if (!e.compareFailed()) {
          throw e;
        }
        contendedBackOff(contenders);
      }
    }
  }

  private void waitForPeers(String version) {
    Active active = getState();
    while (true) {
      if (active.is("frozen", version)) {
        return;
      } else if (active.is("joinable", version)) {
        active = awaitProgress(active, maxNodes - participants(active.state()).size());
      } else {
        throw new RetryableFailure(
            "Rendezvous state transition no longer possible. Must re-enter.", false);
      }
    }
  }

  private long[] confirmPhase(String version, int rank) {
    confirmMembership(version, rank);
    Active active = waitForFinal(version);
    int world = participants(active.state()).size();
    LOG.log(
        Level.DEBUG,
        "run {0}: rendezvous version {1} is complete: {2}",
        runId,
        version,
        active.text());
    return new long[] {Long.parseLong(version), rank, world};
  }

  private void confirmMembership(String version, int rank) {
    for (int attempt = 0; ; attempt++) {
      Active active = getState();
      if (!"frozen".equals(active.status())) {
        throw new RetryImmediately(
            "Rendezvous no longer frozen, before we confirmed. Must join next one");
      }
      if (!version.equals(active.version())) {
        throw new RetryImmediately("Rendezvous version changed. Must try join the new one.");
      }
      String leaseKey = path("/rdzv/v_" + version + "/rank_" + rank);
      client.put(leaseKey, EtcdV2Client.form("ttl", Integer.toString(WORKER_KEEPALIVE_TTL)));
      ArrayNode keepAlives = active.state().withArrayProperty("keep_alives");
      int contenders = participants(active.state()).size() - keepAlives.size();
      keepAlives.add(leaseKey);
      boolean finalize = keepAlives.size() == participants(active.state()).size();
      if (finalize) {
        active.state().put("status", "final");
        active.state().put("num_workers_waiting", 0);
      }
      try {
        cas(active, active.state(), finalize ? null : FROZEN_TTL);
        rankLease = renewLease(leaseKey, WORKER_KEEPALIVE_TTL);
        return;
      } catch (EtcdV2Exception e) {
        if (!e.compareFailed()) {
          throw e;
        }
        contendedBackOff(contenders);
      }
    }
  }

  private Active waitForFinal(String version) {
    Active active = getState();
    while (true) {
      if (active.is("final", version)) {
        return active;
      } else if (active.is("frozen", version)) {
        active =
            awaitProgress(
                active,
                participants(active.state()).size()
                    - active.state().withArrayProperty("keep_alives").size());
      } else {
        throw new RetryableFailure(
            "Rendezvous state transition no longer possible. Must re-enter.", false);
      }
    }
  }

  /**
   * Waits for the state to move on while {@code remaining} more writes by other nodes are needed
   * before it matters to this node. With one write left, or when the last look showed no progress
   * (a last call running, nodes still starting), it watches the key, as PyTorch does. While many
   * writes are still due and the state is moving, it pauses for about the time those writes take
   * and reads once: with N nodes watching, every join or confirmation would otherwise wake all of
   * them (N² requests per round), which is what makes PyTorch's handler slow at scale.
   */
  private Active awaitProgress(Active active, int remaining) {
    if (remaining > 1 && active.text().equals(lastSeenText) == false && lastSeenText != null) {
      lastSeenText = active.text();
      long pauseNanos = Math.min(casNanos * remaining / 2, TimeUnit.SECONDS.toNanos(1));
      pause(Duration.ofNanos(Math.max(pauseNanos, 1_000_000)));
      return getState();
    }
    lastSeenText = active.text();
    return waitForStateChange(active.etcdIndex() + 1, null);
  }

  private void handleExistingRendezvous(String version) {
    announceSelfWaiting(version);
    LOG.log(
        Level.DEBUG,
        "run {0}: added this node to the waiting workers of version {1}",
        runId,
        version);
    waitForRendezvousToFree(version);
  }

  private void announceSelfWaiting(String version) {
    for (int attempt = 0; ; attempt++) {
      Active active = getState();
      if (!active.is("final", version)) {
        throw new RetryImmediately(
            "the final rendezvous changed before this node announced itself");
      }
      active
          .state()
          .put("num_workers_waiting", active.state().path("num_workers_waiting").asInt(0) + 1);
      try {
        cas(active, active.state(), null);
        return;
      } catch (EtcdV2Exception e) {
        if (!e.compareFailed()) {
          throw e;
        }
        EtcdV2Store.backOff(attempt);
      }
    }
  }

  private void waitForRendezvousToFree(String version) {
    Active active = getState();
    while (true) {
      if (!active.is("final", version)) {
        return;
      }
      Set<String> alive = new HashSet<>();
      for (EtcdV2Client.Node child : client.get(path("/rdzv/v_" + version), false).node().nodes()) {
        alive.add(child.key());
      }
      for (var key : active.state().withArrayProperty("keep_alives")) {
        if (!alive.contains(key.asText())) {
          LOG.log(
              Level.INFO,
              "run {0}: keep-alive key {1} was not renewed; destroying version {2}",
              runId,
              key.asText(),
              version);
          client.delete(
              path("/rdzv/active_version"), EtcdV2Client.form("prevValue", active.text()));
          return;
        }
      }
      long left = Math.max(deadline - System.nanoTime(), 0) + 1_000_000_000L;
      try {
        client.watch(path("/rdzv"), active.etcdIndex() + 1, true, Duration.ofNanos(left));
      } catch (EtcdV2Exception e) {
        if (!e.is(EtcdV2Exception.EVENT_INDEX_CLEARED)) {
          throw e;
        }
      }
      if (System.nanoTime() - deadline > 0) {
        throw new RendezvousTimeoutException("The etcd rendezvous of run " + runId + " timed out.");
      }
      active = getState();
    }
  }

  private void handleJoinLastCall(String version, long lastCallDeadline) {
    Active active = getState();
    for (int attempt = 0; ; ) {
      if (active.is("frozen", version)) {
        return;
      }
      if (!active.is("joinable", version)) {
        throw new RetryableFailure(
            "Rendezvous state transition no longer possible. Must re-enter.", false);
      }
      if (System.nanoTime() - lastCallDeadline >= 0) {
        active.state().put("status", "frozen");
        active.state().putArray("keep_alives");
        try {
          cas(active, active.state(), FROZEN_TTL);
          return;
        } catch (EtcdV2Exception e) {
          if (!e.compareFailed()) {
            throw e;
          }
          EtcdV2Store.backOff(attempt++);
          active = getState();
          continue;
        }
      }
      try {
        // Re-write the same text to keep the ephemeral joinable state alive, then wait.
        Active kept = cas(active, active.state(), JOINABLE_EPHEMERAL_TTL);
        long waitNanos =
            Math.min(
                TimeUnit.SECONDS.toNanos(JOINABLE_EPHEMERAL_TTL) / 2,
                lastCallDeadline - System.nanoTime() + 1_000_000_000L);
        active = waitForStateChange(kept.etcdIndex() + 1, Duration.ofNanos(Math.max(waitNanos, 1)));
      } catch (EtcdV2Exception e) {
        if (!e.compareFailed()) {
          throw e;
        }
        EtcdV2Store.backOff(attempt++);
        active = getState();
      }
    }
  }

  private Active waitForStateChange(long etcdIndex, Duration limit) {
    long overall = Math.max(deadline - System.nanoTime(), 0) + 1_000_000_000L;
    long wait = limit == null ? overall : Math.min(limit.toNanos(), overall);
    try {
      client.watch(path("/rdzv/active_version"), etcdIndex, false, Duration.ofNanos(wait));
    } catch (EtcdV2Exception e) {
      if (!e.is(EtcdV2Exception.EVENT_INDEX_CLEARED)) {
        throw e;
      }
    }
    if (System.nanoTime() - deadline > 0) {
      throw new RendezvousTimeoutException("The etcd rendezvous of run " + runId + " timed out.");
    }
    return getState();
  }

  // ---------------------------------------------------------------- etcd helpers

  /**
   * Compare-and-set of {@code active_version} against the exact text read; returns the new state.
   */
  private Active cas(Active read, ObjectNode state, Integer ttl) {
    String text = PythonJson.dumps(state);
    long start = System.nanoTime();
    try {
      return casTimed(read, text, state, ttl);
    } finally {
      long took = System.nanoTime() - start;
      casNanos = (casNanos * 4 + took) / 5;
    }
  }

  /**
   * After a lost compare-and-set among {@code contenders} nodes that all want to write the same
   * key: a random pause spread over about one write time per contender, so that roughly one
   * contender retries per write time instead of all at once (PyTorch pauses 0-100 ms before every
   * attempt, whatever the number of nodes).
   */
  private void contendedBackOff(int contenders) {
    long window = Math.min(casNanos * Math.max(1, contenders), TimeUnit.SECONDS.toNanos(1));
    LockSupport.parkNanos(java.util.concurrent.ThreadLocalRandom.current().nextLong(window + 1));
    if (Thread.currentThread().isInterrupted()) {
      throw new RendezvousException(
          "Interrupted while retrying the etcd rendezvous of run " + runId + ".");
    }
  }

  private Active casTimed(Active read, String text, ObjectNode state, Integer ttl) {
    EtcdV2Client.Result result =
        client.put(
            path("/rdzv/active_version"),
            EtcdV2Client.form(
                "value",
                text,
                "prevValue",
                read.text(),
                "ttl",
                ttl == null ? null : ttl.toString()));
    return new Active(state, text, result.etcdIndex());
  }

  private Active getState() {
    return readStateRaw()
        .orElseThrow(() -> new RetryImmediately("the rendezvous state vanished (its TTL expired)"));
  }

  private java.util.Optional<Active> readStateRaw() {
    try {
      EtcdV2Client.Result result = client.get(path("/rdzv/active_version"), false);
      String text = result.node().value();
      return java.util.Optional.of(
          new Active(PythonJson.parseObject(text), text, result.etcdIndex()));
    } catch (EtcdV2Exception e) {
      if (e.keyNotFound()) {
        return java.util.Optional.empty();
      }
      throw e;
    }
  }

  private java.util.Optional<Active> readState() {
    try {
      return readStateRaw();
    } catch (EtcdV2Exception e) {
      throw translate(e);
    }
  }

  private static ArrayNode participants(ObjectNode state) {
    return state.withArrayProperty("participants");
  }

  String path(String sub) {
    String p = sub.startsWith("/") || sub.isEmpty() ? sub : "/" + sub;
    return prefix + "run_" + runId + p;
  }

  private void createDirIfMissing(String path, Integer ttl) {
    try {
      client.put(
          path,
          EtcdV2Client.form(
              "dir", "true", "prevExist", "false", "ttl", ttl == null ? null : ttl.toString()));
    } catch (EtcdV2Exception e) {
      if (!e.is(EtcdV2Exception.NODE_EXIST)) {
        throw e;
      }
    }
  }

  /**
   * Refreshes {@code path}'s TTL every {@code ttl / 2} seconds until the key is gone or cancelled.
   */
  private ScheduledFuture<?> renewLease(String path, int ttl) {
    ScheduledFuture<?>[] self = new ScheduledFuture<?>[1];
    Runnable refresh =
        () ->
            Thread.ofVirtual()
                .name("rdzv-etcd-refresh")
                .start(
                    () -> {
                      try {
                        client.put(
                            path,
                            EtcdV2Client.form(
                                "ttl",
                                Integer.toString(ttl),
                                "refresh",
                                "true",
                                "prevExist",
                                "true"));
                      } catch (EtcdV2Exception e) {
                        if (e.keyNotFound() || e.kind() == EtcdV2Exception.Kind.UNAVAILABLE) {
                          LOG.log(
                              Level.DEBUG,
                              "stopping TTL refresh of {0}: {1}",
                              path,
                              e.getMessage());
                          if (self[0] != null) {
                            self[0].cancel(false);
                          }
                        } else {
                          LOG.log(
                              Level.WARNING,
                              "TTL refresh of {0} failed: {1}",
                              path,
                              e.getMessage());
                        }
                      }
                    });
    long periodMillis = ttl * 1000L / 2;
    self[0] =
        RENEWALS.scheduleAtFixedRate(refresh, periodMillis, periodMillis, TimeUnit.MILLISECONDS);
    return self[0];
  }

  private void pause(Duration duration) {
    long until = Math.min(System.nanoTime() + duration.toNanos(), deadline + 1);
    while (System.nanoTime() - until < 0) {
      LockSupport.parkNanos(until - System.nanoTime());
      if (Thread.currentThread().isInterrupted()) {
        throw new RendezvousException(
            "Interrupted while waiting to retry the etcd rendezvous of run " + runId + ".");
      }
    }
  }

  private RendezvousException translate(EtcdV2Exception e) {
    return switch (e.kind()) {
      case UNAVAILABLE -> new RendezvousConnectionException(e.getMessage(), e);
      case INTERRUPTED -> new RendezvousException("Interrupted while talking to etcd.", e);
      case PROTOCOL ->
          new RendezvousConnectionException("etcd gave an unexpected answer: " + e.getMessage(), e);
      case ERROR ->
          new RendezvousException("etcd refused a rendezvous request: " + e.getMessage(), e);
    };
  }

  @Override
  public String toString() {
    return "EtcdRendezvousHandler[run="
        + runId
        + ", prefix="
        + prefix
        + ", etcd="
        + client.connection().endpointText()
        + "]";
  }
}
