-- One executor at a time calls Stripe for a payout's transfer; a crashed one's lease ends.
ALTER TABLE payment_payouts ADD COLUMN transfer_lease_until TIMESTAMPTZ;
