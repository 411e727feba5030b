"""The whole referral workflow end to end, through the pages and through the JSON API."""
