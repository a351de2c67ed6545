// Secrets never leave their place: the one pattern of a DH-HMAC-CHAP secret in the NVMe text form
// (`DHHC-1:<hh>:<base64 of key + CRC-32>:`) and the redaction every outward text goes through (log
// lines, Events, errors a caller may pass on to kubelet). Defence in depth: the code hands secrets
// only to the kernel, this catches a secret that slipped into a message anyway.

/** A DH-HMAC-CHAP secret anywhere in a text (the shortest key is 32 bytes: 48 base64 characters). */
export const DHCHAP_SECRET_IN_TEXT = /DHHC-1:[0-9a-f]{2}:[A-Za-z0-9+/]{20,}={0,2}:?/gi;

export const REDACTED = 'DHHC-1:<redacted>';

export function redactSecrets(text: string): string {
  return text.replace(DHCHAP_SECRET_IN_TEXT, REDACTED);
}

/** Whether a text holds a secret (what the kernel tier's scans of command lines and logs ask). */
export function holdsSecret(text: string): boolean {
  return new RegExp(DHCHAP_SECRET_IN_TEXT.source, 'i').test(text);
}
