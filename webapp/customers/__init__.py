"""The customer base as marketers browse it: the list with search and filters, the customer card."""
