import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseTimestamp, partnerSignature, signatureMatches, timestampFresh } from '../../src/core/partner-signature.js';

// The EncryptKey of the seed's example URL.
const KEY = '55HCmiPaEkEEy20LWP8V9nGbvpkl6EY8USqDkaRRlrk=';

describe('core/partner-signature (decisions 17)', () => {
  it('is Base64(HMAC-SHA256(Base64-decode(EncryptKey), PartnerID:GetPlusID:Timestamp)) — vector from an independent implementation', () => {
    // Python: base64.b64encode(hmac.new(base64.b64decode(KEY), b'PARTNER01:GP-12345:1662092274', hashlib.sha256).digest())
    assert.equal(partnerSignature(KEY, 'PARTNER01', 'GP-12345', 1662092274), 'QggD0+6Y3DuleR8/6FeH3DJXY1Bmx9aUugBhvVWsSC8=');
    assert.equal(partnerSignature(KEY, 'PARTNER01', 'GP-12345', '1662092274'), 'QggD0+6Y3DuleR8/6FeH3DJXY1Bmx9aUugBhvVWsSC8=');
  });

  it('matches only the exact signature', () => {
    const good = 'QggD0+6Y3DuleR8/6FeH3DJXY1Bmx9aUugBhvVWsSC8=';
    assert.equal(signatureMatches(KEY, 'PARTNER01', 'GP-12345', '1662092274', good), true);
    assert.equal(signatureMatches(KEY, 'PARTNER01', 'GP-12345', '1662092275', good), false);
    assert.equal(signatureMatches(KEY, 'PARTNER01', 'GP-12346', '1662092274', good), false);
    assert.equal(signatureMatches(KEY, 'PARTNER01', 'GP-12345', '1662092274', good.toLowerCase()), false);
    assert.equal(signatureMatches(KEY, 'PARTNER01', 'GP-12345', '1662092274', ''), false);
    assert.equal(signatureMatches(KEY, 'PARTNER01', 'GP-12345', '1662092274', good.slice(0, -1)), false);
  });

  it('reads Timestamps as Unix seconds, from strings or numbers, and accepts them within ±300 s', () => {
    assert.equal(parseTimestamp('1662092274'), 1662092274);
    assert.equal(parseTimestamp(1662092274), 1662092274);
    for (const bad of ['', '16620.5', '-1', '1662092274000000', 'abc', 1.5, null, undefined, {}]) assert.equal(parseTimestamp(bad), undefined, String(bad));
    const now = 1_662_092_274_000;
    assert.equal(timestampFresh(1662092274 - 300, now), true);
    assert.equal(timestampFresh(1662092274 + 300, now), true);
    assert.equal(timestampFresh(1662092274 - 301, now), false);
    assert.equal(timestampFresh(1662092274 + 301, now), false);
  });
});
