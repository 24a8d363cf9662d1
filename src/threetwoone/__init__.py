"""threetwoone: is each research dataset really in 3 copies, on 2 media, 1 off-site?"""

__version__ = "0.1.0"
