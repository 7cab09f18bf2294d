package org.rdzv.launcher;

/**
 * Where the workers of one round find their store, as their environment says: {@code MASTER_ADDR},
 * {@code MASTER_PORT}, and whether they are clients of a store that is already served ({@code
 * TORCHELASTIC_USE_AGENT_STORE=True}) or worker rank 0 hosts it ({@code False}).
 */
record WorkerStore(String addr, int port, boolean useAgentStore) {}
