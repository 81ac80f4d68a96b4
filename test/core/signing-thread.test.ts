import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, verify } from 'node:crypto';
import { describe, it } from 'node:test';
import { ed25519FromSeed } from '../../src/core/jws.js';
import { REQUESTS_PER_MESSAGE, SigningThread, type SignRequest } from '../../src/core/signing-thread.js';
import { moduleUnderTest, runScriptToExit } from '../support/module-script.js';

/** `n` requests over `input-i`, with the promise each settles. */
function requestsFor(n: number, keyOf: (i: number) => SignRequest['privateKey']): { requests: SignRequest[]; settled: Promise<PromiseSettledResult<string>[]> } {
  const requests: SignRequest[] = [];
  const promises = Array.from({ length: n }, (_, i) => new Promise<string>((resolve, reject) => requests.push({ input: `input-${i}`, privateKey: keyOf(i), resolve, reject })));
  return { requests, settled: Promise.allSettled(promises) };
}

const holds = (signature: string, i: number, publicKey: SignRequest['privateKey']) => verify(null, Buffer.from(`input-${i}`, 'ascii'), publicKey, Buffer.from(signature, 'base64url'));

describe('the signing thread', () => {
  it('takes nothing until it is up; then signs a turn over several messages, and a key that cannot sign fails its request alone', async () => {
    const pair = ed25519FromSeed(randomBytes(32));
    const other = ed25519FromSeed(randomBytes(32));
    const fellBack: SignRequest[] = [];
    const thread = new SigningThread((requests) => fellBack.push(...requests));
    try {
      const early = requestsFor(2, () => pair.privateKey);
      assert.equal(thread.take(early.requests), false, 'a thread still starting takes nothing: the caller signs on the pool');
      assert.equal(thread.state, 'starting');
      await thread.started();
      assert.equal(thread.state, 'running');

      // An X25519 key cannot sign, nor can a public key: each fails alone. Two keys, each sent once.
      const n = REQUESTS_PER_MESSAGE * 2 + 3;
      const keyOf = (i: number) => (i === 5 ? generateKeyPairSync('x25519').privateKey : i === 20 ? pair.publicKey : i % 2 ? other.privateKey : pair.privateKey);
      const turn = requestsFor(n, keyOf);
      assert.equal(thread.take(turn.requests), true);
      assert.equal(thread.inFlight, n);
      const results = await turn.settled;
      assert.equal(thread.inFlight, 0);
      results.forEach((result, i) => {
        if (i === 5 || i === 20) return assert.equal(result.status, 'rejected', `request ${i}`);
        assert.equal(result.status, 'fulfilled', `request ${i}`);
        assert.ok(holds((result as PromiseFulfilledResult<string>).value, i, i % 2 ? other.publicKey : pair.publicKey), `signature ${i} holds under its own key`);
      });
      assert.equal(fellBack.length, 0);
    } finally {
      await thread.stop();
    }
  });

  it('a thread that dies holding requests hands them to the fallback, each once, and takes no more', async () => {
    const pair = ed25519FromSeed(randomBytes(32));
    const fellBack: SignRequest[] = [];
    const thread = new SigningThread((requests) => fellBack.push(...requests));
    await thread.started();
    // ~400 signatures are milliseconds of work: the thread is ended long before it has made them all.
    const n = 400;
    const turn = requestsFor(n, () => pair.privateKey);
    assert.equal(thread.take(turn.requests), true);
    await thread.stop();
    assert.equal(thread.state, 'failed');
    assert.match(String(thread.failure), /exited with code/);
    assert.equal(thread.inFlight, 0);
    assert.equal(thread.take(requestsFor(1, () => pair.privateKey).requests), false, 'a failed thread takes nothing');
    assert.ok(fellBack.length > 0, 'requests it held went to the fallback');
    assert.equal(new Set(fellBack).size, fellBack.length, 'each once');
    for (const request of fellBack) request.resolve('handed on');
    const results = await turn.settled;
    const values = results.map((result) => (result.status === 'fulfilled' ? result.value : 'rejected'));
    assert.equal(values.filter((value) => value === 'handed on').length, fellBack.length);
    values.forEach((value, i) => value === 'handed on' || assert.ok(holds(value, i, pair.publicKey), `request ${i} was answered by the thread, or handed on`));
  });

  it('keeps a process up while it holds requests, and never once they are answered', async () => {
    const module = moduleUnderTest('core/jws');
    // Nothing but the thread keeps this process up while the six signatures are on it: exiting before they
    // come back would print nothing, and staying up after them would be killed by the test.
    const script = `
      const { ed25519FromSeed, signCompactJws, verifyCompactJws, signingThread } = await import(${JSON.stringify(module)});
      const pair = ed25519FromSeed(Buffer.alloc(32, 7));
      await signingThread.started();
      const receipts = Array.from({ length: 6 }, (_, i) => signCompactJws({ n: i }, pair.privateKey, 'k1'));
      Promise.all(receipts).then((all) => console.log(signingThread.state, all.filter((jws, i) => verifyCompactJws(jws, pair.publicKey)?.payload.n === i).length));`;
    assert.equal(await runScriptToExit(script), 'running 6', 'all six signed on the thread, and each verifies');
  });
});
