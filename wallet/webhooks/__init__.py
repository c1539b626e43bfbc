"""The app's webhook endpoints and the signed, retried deliveries of events to them."""
