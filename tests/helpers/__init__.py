"""What many tests share: a clock to pass, doors into the app, page parsing."""
