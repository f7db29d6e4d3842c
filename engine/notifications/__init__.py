"""Notifications through a transactional outbox.

A command that gives someone work writes `notification` rows in its own transaction
(`outbox`): they exist exactly when the command committed. The worker's pass adds the
reminders (due tomorrow, overdue) the clock brings, and delivers what is pending
(`delivery`): e-mail over SMTP and a JSON POST to a webhook, each channel with its
own state, retried with growing waits and given up after a number of tries. A failed
delivery never touches the command that wrote the row; the unique key (task, kind,
recipient) keeps each notice to one row, and a row is marked sent in the transaction
that holds it, so nothing goes out twice. Every notice is also listed in the app."""
