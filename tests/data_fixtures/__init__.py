"""Writers of small archives in the exact original formats of the real datasets (for offline tests).

Each module writes one archive under its original file name into a folder and returns the values it wrote,
so a test can compare what a loader read with what is on disk without calling the code under test.
"""
