import type { Channel } from '../core/destination.js';

export interface TemplateInput {
  appName: string;
  code: string;
  minutes: number;
  channel: Channel;
  locale: string | null;
}

/**
 * Message text. Short and with the code first in SMS so lock screens show it; voice spells the digits
 * out with pauses so a listener can write them down.
 */
export function renderMessage(input: TemplateInput): { text: string; subject: string } {
  const subject = `Your ${input.appName} verification code`;
  if (input.channel === 'voice') {
    const spoken = input.code.split('').join(', ');
    return { subject, text: `Your ${input.appName} verification code is: ${spoken}. Again: ${spoken}.` };
  }
  const minutes = input.minutes === 1 ? '1 minute' : `${input.minutes} minutes`;
  return { subject, text: `${input.code} is your ${input.appName} verification code. It expires in ${minutes}. Do not share it.` };
}
