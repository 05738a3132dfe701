"""The send loop's parts: the per-campaign lock, the worker pool with its rate limit and retries,
and the per-recipient message factory. ``cohesion_mail.campaign`` puts them together."""
