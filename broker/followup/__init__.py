"""Follow-up: allocations, requests and their facilities, default rules, priorities, reports."""
