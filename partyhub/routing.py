from django.urls import path

from partyhub.consumers import PartyConsumer

websocket_urlpatterns = [
    path("ws/parties/<str:code>/", PartyConsumer.as_asgi()),
]
