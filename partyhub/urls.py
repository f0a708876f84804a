from django.urls import path

from partyhub import gallery_views, search_views, views

urlpatterns = [
    path("p/<str:code>/", views.party_room, name="party"),
    path("p/<str:code>/stage/", views.party_stage, name="stage"),
    path("p/<str:code>/replay/", views.party_replay, name="replay"),
    path("p/<str:code>/export.zip", views.export_zip, name="export"),
    path("g/<str:code>/", gallery_views.gallery, name="gallery"),
    path("api/parties", views.create_party),
    path("api/parties/<str:code>", views.party_snapshot),
    path("api/parties/<str:code>/join", views.join_party),
    path("api/parties/<str:code>/events", views.party_events),
    path("api/parties/<str:code>/renders/<str:render_id>/candidates", views.render_candidates),
    path("api/parties/<str:code>/messages", views.party_messages),
    path("api/parties/<str:code>/tree.svg", views.party_tree),
    path("api/parties/<str:code>/publish", gallery_views.publish),
    path("api/parties/<str:code>/uploads", views.upload_image),
    path("api/parties/<str:code>/search", search_views.party_search, name="party_search"),
    path("api/search", search_views.gallery_search, name="gallery_search"),
    path("api/models", views.models),
    path("api/models/<str:name>/tokens", views.model_tokens),
    path("search/", search_views.search_page, name="search"),
]
