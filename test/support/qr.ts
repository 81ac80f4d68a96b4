import jsQRModule from 'jsqr';
import { PNG } from 'pngjs';

// jsqr is a CommonJS bundle whose function is on `.default` (its typings say so under NodeNext).
const jsQR = jsQRModule.default;

/** Decodes a QR code from a plain-base64 PNG (as otpd returns it) with an independent reader (jsQR). */
export function decodeQrPng(base64: string): string | undefined {
  const png = PNG.sync.read(Buffer.from(base64, 'base64'));
  return jsQR(new Uint8ClampedArray(png.data.buffer, png.data.byteOffset, png.data.byteLength), png.width, png.height)?.data;
}
