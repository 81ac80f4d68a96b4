import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Cluster } from 'ioredis';
import { newId, newVerificationId, routingTag } from '../../src/core/ids.js';
import { openRedisStore } from '../../src/store/redis/index.js';
import { groupOf, RedisKeys } from '../../src/store/redis/keys.js';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.js';
import { uniquePrefix } from '../support/redis-keys.js';
import { storeContract, TEST_ROUTING_KEY } from './contract.js';

/**
 * The same contract against a real 3-master Redis Cluster. The scripts carry a Redis 7 shebang, so a script
 * touching any key outside its own hash slot fails even when both slots live on one node: the contract
 * passing here means every multi-key decision stays inside one slot. The cluster is spawned for this file
 * and killed at the end (its data goes with it).
 */
let cluster: RedisCluster | undefined;

async function ensureCluster(): Promise<RedisCluster> {
  cluster ??= await startRedisCluster();
  return cluster;
}

after(async () => {
  await cluster?.stop();
});

storeContract('redis-cluster', async () =>
  openRedisStore({ urls: (await ensureCluster()).urls, cluster: true, prefix: uniquePrefix('cluster'), routingKey: TEST_ROUTING_KEY }),
);

describe('Redis Cluster key layout', () => {
  let client: Cluster;
  before(async () => {
    const { urls } = await ensureCluster();
    client = new Cluster(urls.map((url) => ({ host: new URL(url).hostname, port: Number(new URL(url).port) })));
  });
  after(() => {
    client.disconnect();
  });

  it('puts a destination\'s verifications and pending pointer in one slot, and spreads destinations over the cluster', async () => {
    const keys = new RedisKeys('otpd:');
    const appId = newId('app');
    const slots = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const to = `+1555000${String(i).padStart(4, '0')}`;
      const tag = routingTag(TEST_ROUTING_KEY, appId, to);
      const first = keys.verification(newVerificationId(tag))!;
      const second = keys.verification(newVerificationId(tag))!;
      const slot = Number(await client.cluster('KEYSLOT', first));
      assert.equal(Number(await client.cluster('KEYSLOT', second)), slot);
      assert.equal(Number(await client.cluster('KEYSLOT', keys.pendingPointers(groupOf(tag)))), slot);
      assert.equal(Number(await client.cluster('KEYSLOT', keys.outboxEntry(newVerificationId(tag)))), slot);
      slots.add(slot);
    }
    assert.ok(slots.size > 150, `only ${slots.size} distinct slots for 200 destinations`);
    assert.equal(client.nodes('master').length, 3);
  });
});
