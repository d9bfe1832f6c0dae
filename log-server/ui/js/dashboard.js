// Page glue of the dashboard: trust panel, row verification, live view (written by webjs).
