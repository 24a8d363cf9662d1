"""Repair planning (``threetwoone plan``): what to copy where to get a dataset
back to its policy, from what the latest audit recorded, touching no storage.

- ``replicas``: how many intact copies each reference file has (also used by
  the audit report's ``files_at_risk`` and ``files_lost``);
- ``declaration``: a digest of a dataset's declaration, to tell a plan that
  the inventory changed since the audit it is built from;
- ``routes``: time over the network and by courier;
- ``commands``: the rsync/rclone command of each action, quoted for a shell;
- ``planner``: the plan itself; ``render``: table and JSON.
"""
