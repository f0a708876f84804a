"""The party app's models, one module per concept, all importable from `partyhub.models`."""

from partyhub.models.event import Association, Event, party_group, record_event
from partyhub.models.image import Image, Upload, Vote
from partyhub.models.member import Member
from partyhub.models.party import JOIN_CODE_ALPHABET, JOIN_CODE_LENGTH, Party, new_join_code
from partyhub.models.prompt import Prompt
from partyhub.models.render import Render
from partyhub.models.sweep import Sweep
from partyhub.models.talk import REACTIONS, Message, Reaction

__all__ = [
    "JOIN_CODE_ALPHABET",
    "JOIN_CODE_LENGTH",
    "Association",
    "Event",
    "Image",
    "Member",
    "Message",
    "Party",
    "Prompt",
    "REACTIONS",
    "Reaction",
    "Render",
    "Sweep",
    "Upload",
    "Vote",
    "new_join_code",
    "party_group",
    "record_event",
]
