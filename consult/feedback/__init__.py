"""Defect feedback after completion (反馈制度 / 查漏补缺): reports of what is wrong with the
finished works during their warranty period, and what the committee did about them."""
