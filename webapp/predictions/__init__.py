"""Predictions: the standard non-contractual customer-lifetime-value models, BG/NBD
(Fader, Hardie & Lee 2005) for the number of future purchases and whether a customer is
still "alive", and Gamma-Gamma (Fader & Hardie 2013; Colombo & Jiang 1999) for the
expected order value, combined into a discounted CLV over a horizon in months. `model`
is pure numpy/scipy (no Flask, no database): it fits the models by maximum likelihood
on per-customer summaries (x repeat purchases, recency t_x, age T, mean repeat spend) and
scores arrays of customers; the data loading, jobs and pages build on top of it."""
