"""Checking an answer against its passages: sentences cut with their offsets
(`sentences`), which passage backs each sentence (`attribution`), whether the passages
hold what is asked (`presence`), citations kept or dropped (`citations`), passages cut to
their best sentences for the prompt (`trim`), and what is finally said (`check.ground`)."""
