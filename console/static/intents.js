// One idempotency key per intended action. The key is made when the staff member asks for the action
// (e.g. opens the refund confirmation) and is reused by every send of that same action: a double
// click or a retry after a lost answer is the same request to PayQL, so it happens once. A new
// intention (another amount, another reason, or after a definitive answer) gets a new key.
const keys = new Map();

export function keyFor(intent) {
  if (!keys.has(intent)) keys.set(intent, crypto.randomUUID());
  return keys.get(intent);
}

// After a definitive answer the next identical request is a new intention.
export function settle(intent) {
  keys.delete(intent);
}
