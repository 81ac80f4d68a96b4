import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { sign, verifyProblem } from '../../src/delivery/standard-webhooks.js';
import { twilioSignature, validTwilioSignature } from '../../src/delivery/twilio.js';
import { vonageSignature } from '../../src/delivery/vonage.js';

/** The providers' own published vectors, so otpd is checked against them rather than against itself. */
describe('provider signatures', () => {
  it('Twilio X-Twilio-Signature: the example of Twilio\'s security documentation', () => {
    const url = 'https://mycompany.com/myapp.php?foo=1&bar=2';
    const params = { CallSid: 'CA1234567890ABCDE', Caller: '+14158675309', Digits: '1234', From: '+14158675309', To: '+18005551212' };
    assert.equal(twilioSignature('12345', url, params), 'RSOYDt4T1cUTdK1PDd93/VVr8B8=');
    assert.equal(validTwilioSignature('12345', url, params, 'RSOYDt4T1cUTdK1PDd93/VVr8B8='), true);
    assert.equal(validTwilioSignature('12345', url, { ...params, Digits: '9999' }, 'RSOYDt4T1cUTdK1PDd93/VVr8B8='), false);
    assert.equal(validTwilioSignature('12345', url + '&x=1', params, 'RSOYDt4T1cUTdK1PDd93/VVr8B8='), false);
    assert.equal(validTwilioSignature('12345', url, params, undefined), false);
  });

  it('Standard Webhooks: the specification\'s test vector, the timestamp window and rotation lists', () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const id = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
    const body = '{"test": 2432232314}';
    assert.equal(sign(secret, id, 1614265330, body), 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
    const headers = { 'webhook-id': id, 'webhook-timestamp': '1614265330', 'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=' };
    assert.equal(verifyProblem(secret, headers, body, 1614265330 + 299), undefined);
    assert.match(verifyProblem(secret, headers, body, 1614265330 + 301)!, /more than 300 s/);
    assert.match(verifyProblem(secret, headers, body + ' ', 1614265330)!, /no webhook-signature matches/);
    assert.equal(verifyProblem(secret, { ...headers, 'webhook-signature': 'v1,AAAA v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=' }, body, 1614265330), undefined, 'any signature of a rotation list may match');
    assert.match(verifyProblem(secret, { 'webhook-id': id }, body, 1614265330)!, /required/);
  });

  it('Vonage signed requests: md5hash of the Vonage SDK test vector, and the HMAC methods', () => {
    const params = { a: '1', b: '2', timestamp: '1461605396' };
    assert.equal(vonageSignature(params, 'secret', 'md5hash'), '6af838ef94998832dbfc29020b564830');
    // HMAC variants sign the same "&k=v" string, keyed by the secret; & and = inside values become _.
    const withSeparators = { text: 'a&b=c', timestamp: '1' };
    assert.equal(vonageSignature(withSeparators, 'secret', 'sha256'), createHmac('sha256', 'secret').update('&text=a_b_c&timestamp=1').digest('hex'));
    assert.equal(vonageSignature(params, 'secret', 'sha512').length, 128);
  });
});
