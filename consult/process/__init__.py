"""The 一征三议两公开 process above the domains: it moves a consultation through its stages
(workflow), applies deadlines when a consultation is opened (loading), and assembles what spans
several domains (overview, inbox, the public audit export, the printed documents). Domains
never import this package.
"""
