"""Receipts as PDF, the bank's settlement files, and the money-trail queries over the views."""
